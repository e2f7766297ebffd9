/**
 * The short version of the benchmark's smoke test in `npm test`: `npm run bench -- --quick` with the
 * broadcast and cold start cases (the counts the cost model is fed with, the Scan comparison, the
 * archive). Every case runs in `npm run test:long` (tests/long/benchQuick.long.ts).
 */
import { quickSuite } from "./quickSuite";

quickSuite(["broadcast", "coldstart"]);
