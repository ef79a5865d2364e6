// Writes `.br` and `.gz` beside each WASM, JS and CSS file of the built site
// (target/site/pkg), so the server sends them compressed without compressing
// on every request. Run by scripts/setup.sh after each build.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const pkg = process.argv[2];
for (const file of readdirSync(pkg).filter((f) => /\.(wasm|js|css)$/.test(f))) {
  const bytes = readFileSync(join(pkg, file));
  writeFileSync(join(pkg, `${file}.gz`), gzipSync(bytes, { level: 9 }));
  writeFileSync(join(pkg, `${file}.br`), brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  }));
}
