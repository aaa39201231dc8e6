/** Every scenario through the adapter and the sandbox under 5% API chaos (the heavy suite: `npm run test:full`). */
import { equivalenceTests } from './equivalence.ts';

equivalenceTests(0, 1, { chaos: 0.05 });
