/** `npm run bench -- --quick` with every case, and every check (tests/bench/quickSuite.ts). */
import { QUICK_CASES, quickSuite } from "../bench/quickSuite";

quickSuite(QUICK_CASES);
