// Prints vitest's JSON report as the plain closing line CI tools read: "tests: N passed, N failed".
const r = require(require('node:path').resolve(process.argv[2]));
const failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
console.log(`tests: ${r.numPassedTests} passed, ${failed} failed${r.numPendingTests ? `, ${r.numPendingTests} skipped` : ''}`);
