/** Crash-resume with 60 SIGKILLs (CI, `npm run test:full`); see test/engine/crash/suite.ts. */
import { crashResumeSuite } from './crash/suite.ts';

crashResumeSuite(60);
