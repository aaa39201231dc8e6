/**
 * A representative few scenarios through the adapter and the sandbox under API chaos (429 with Retry-After, 500s,
 * 409s on Node writes, dropped watches): the node outcomes are the simulator's. Every scenario is run so in
 * equivalence-chaos.full.test.ts (the heavy suite).
 */
import { equivalenceTests } from './equivalence.ts';

equivalenceTests(0, 1, { chaos: 0.1, files: ['pdb-blocks-drain-briefly', 'api-errors-retried', 'drain-forced', 'reboot-required-rebooted'] });
