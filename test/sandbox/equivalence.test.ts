/**
 * The engine through the Kubernetes adapter and the sandbox matches the simulator: in `npm test`, a representative
 * few scenarios (drains blocked and retried, reboots, a lost node, API errors, an orchestrator crash);
 * every scenario file runs in `npm run test:full` (equivalence-1/2.full.test.ts).
 */
import { equivalenceTests } from './equivalence.ts';

equivalenceTests(0, 1, { files: ['demo.yaml', 'pdb-blocks-drain.yaml', 'api-errors-retried.yaml', 'orchestrator-crash-during-patch.yaml'] });
