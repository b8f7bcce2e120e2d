// `wasm-tools component embed` for build.sh, through jco's API: embeds the contract's WIT
// (world `worker`) into the Go core module. Not `jco embed --wit DIR`: in jco 1.35.0 that
// panics (NotFound) on any path, since its wasm-tools cannot open host files; the API takes
// the WIT as source text instead. The contract folder is one package over several files,
// so their bodies are joined under the single `package` line they all repeat.
// Usage: node embed.mjs TOOLCHAIN_DIR WIT_DIR core.wasm OUT.wasm
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [tc, wit, core, out] = process.argv.slice(2);
const api = join(tc, "node_modules/@bytecodealliance/jco/dist/api.js");
const { componentEmbed } = await import(pathToFileURL(api).href);
const packages = new Set();
const bodies = readdirSync(wit)
  .filter((f) => f.endsWith(".wit"))
  .sort()
  .map((f) =>
    readFileSync(join(wit, f), "utf8").replace(/^package\s+([^;]+);/m, (_, p) => {
      packages.add(p.trim());
      return "";
    }),
  );
if (packages.size !== 1) {
  throw new Error(`${wit}: expected one WIT package over its files, found ${[...packages].join(", ") || "none"}`);
}
const witSource = `package ${[...packages][0]};\n${bodies.join("\n")}`;
writeFileSync(out, await componentEmbed({ binary: readFileSync(core), witSource, world: "worker" }));
