import { equivalenceTests } from './equivalence.ts';

equivalenceTests(1, 2);
