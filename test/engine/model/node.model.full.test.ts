/** The node machine's full model (every path of three policies) for `npm run test:full`; see node.model.test.ts. */
import './node.model.test.ts';
