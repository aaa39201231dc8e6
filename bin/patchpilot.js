#!/usr/bin/env node
// Entry point for `npx patchpilot` and `npm start`. patchpilot is written in TypeScript and run by Node's own type
// stripping (Node >= 22.18), so there is no build step; npm scripts and npx use the Node 24 the project pins.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `patchpilot needs Node.js 22.18 or newer (this is ${process.version}).\n` +
      'Run it through npm so the pinned Node 24 is used: `npm start`, or `npx patchpilot ...` after `npm install`.\n',
  );
  process.exit(2);
}
// Node keeps the compiled (and type-stripped) modules in a cache under the OS temp directory, which halves the start
// of every later command; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
// A reader that goes away (`patchpilot sim ... | head`) must not crash a command halfway, a run with nodes cordoned
// least of all: the rest of the output is dropped and the command finishes as it would have.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    stream.write = (_chunk, encoding, done) => {
      (typeof encoding === 'function' ? encoding : done)?.();
      return true;
    };
  });
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
