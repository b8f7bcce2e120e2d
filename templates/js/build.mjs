// Bundles the TypeScript sources with esbuild (no type check; build.sh runs tsc for that).
//   node build.mjs component <wit-dir> <out.js>   src/component.ts -> one ES module whose
//       `nthlayer:worker/<iface>` imports name the WIT folder's version (`…/core@0.3.0`),
//       the exact specifiers componentize-js resolves against the WIT.
//       __MODULE_NAME__ / __MODULE_VERSION__ are package.json's name and version.
//   node build.mjs test <out.mjs>                 test/*.test.ts -> one module for node --test
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [what, ...args] = process.argv.slice(2);
// esbuild lives in the toolchain directory, not in this project (build.sh says where).
const esbuild = await import(process.env.NTHLAYER_ESBUILD ?? "esbuild");
const build = esbuild.build ?? esbuild.default.build;

function contractVersion(witDir) {
  for (const f of readdirSync(witDir).filter((f) => f.endsWith(".wit"))) {
    const m = readFileSync(join(witDir, f), "utf8").match(/^package\s+nthlayer:worker@([^;\s]+);/m);
    if (m) return m[1];
  }
  throw new Error(`${witDir}: no "package nthlayer:worker@X.Y.Z;" line in any .wit file`);
}

// preserveSymlinks: a project may share files by symlink (the repository's examples link
// the template's glue); "./module.js" must resolve next to the link, not its target.
const common = { preserveSymlinks: true, bundle: true, format: "esm", platform: "neutral", target: "es2022", logLevel: "warning" };

if (what === "component") {
  const [witDir, outfile] = args;
  const version = contractVersion(witDir);
  const contract = {
    name: "nthlayer-contract",
    setup(b) {
      b.onResolve({ filter: /^nthlayer:worker\/[a-z-]+$/ }, (a) => ({ path: `${a.path}@${version}`, external: true }));
    },
  };
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  const define = { __MODULE_NAME__: JSON.stringify(pkg.name), __MODULE_VERSION__: JSON.stringify(pkg.version) };
  await build({ ...common, entryPoints: ["src/component.ts"], outfile, plugins: [contract], define });
} else if (what === "test") {
  const tests = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => join("test", f));
  await build({ ...common, platform: "node", entryPoints: tests, outdir: args[0], outExtension: { ".js": ".mjs" } });
} else {
  console.error("usage: node build.mjs component <wit-dir> <out.js> | test <out-dir>");
  process.exit(2);
}
