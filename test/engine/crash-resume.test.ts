/**
 * Crash-resume in `npm test`: the orchestrator SIGKILLed at 5 random points of one run (test/engine/crash/suite.ts has
 * the checks). The full 60 run in CI: crash-resume.full.test.ts.
 */
import { crashResumeSuite } from './crash/suite.ts';

crashResumeSuite(5, 20261206);
