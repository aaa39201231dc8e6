import { equivalenceTests } from './equivalence.ts';

equivalenceTests(0, 2);
