// Bundles livekit-client (pinned by package-lock.json) into agent/devpage/static/livekit-client.js, the file the
// dev page loads: no CDN. Run `npm ci --prefix web && npm run --prefix web build` after changing the pin, and commit
// the output; tests/page checks that the committed bundle is the locked version.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));
const lock = JSON.parse(readFileSync(`${here}package-lock.json`, "utf8"));
const version = lock.packages["node_modules/livekit-client"].version;

await build({
  entryPoints: [`${here}src/livekit.js`],
  outfile: `${here}../agent/devpage/static/livekit-client.js`,
  bundle: true,
  format: "iife",
  globalName: "LivekitClient",
  target: "es2020",
  minify: true,
  legalComments: "eof",
  banner: { js: `/* livekit-client ${version} (npm), bundled by web/build.mjs */` },
  logLevel: "warning",
});
console.log(`bundled livekit-client ${version}`);
