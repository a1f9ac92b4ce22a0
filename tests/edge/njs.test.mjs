// The CloudFront Function on njs, the engine family of cloudfront-js-2.0: Node accepts
// syntax CloudFront rejects (an `await` inside call arguments, spread, ...), njs does not.
// Runs njs/main.mjs, which loads the rendered function as a module and runs every case
// of cases.mjs against the shared stub. Needs the `njs` command (Debian's njs package;
// `make system-deps` installs it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import cases from './cases.mjs';
import { SOURCE, render } from './load_router.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** Runs the njs runner over `source` (the function's source); returns njs's result. */
function runOnNjs(source = SOURCE) {
    const scratch = mkdtempSync(join(tmpdir(), 'geo-router-njs-'));
    try {
        // njs resolves `import cf from 'cloudfront'` to a file named exactly `cloudfront`.
        copyFileSync(join(HERE, 'njs', 'cloudfront.js'), join(scratch, 'cloudfront'));
        for (const [file, regions] of [['router_multi.js', ['sg', 'eu']], ['router_single.js', ['sg']]]) {
            writeFileSync(join(scratch, file), `${render(regions, source)}\nexport default handler;\n`);
        }
        return spawnSync(
            'njs',
            ['-t', 'module', '-p', HERE, '-p', scratch, join(HERE, 'njs', 'main.mjs')],
            { encoding: 'utf8', timeout: 30_000 },
        );
    } finally {
        rmSync(scratch, { recursive: true, force: true });
    }
}

const result = runOnNjs();
const lines = (result.stdout ?? '').split('\n');

test('njs loads the function and runs every case', () => {
    assert.equal(result.error, undefined, `njs could not run: ${result.error}`);
    assert.equal(result.status, 0, `njs exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
    assert.equal(lines.filter((line) => line.startsWith('ok ')).length, cases.CASES.length);
});

for (const c of cases.CASES) {
    test(`njs: ${c.name}`, () => {
        const line = lines.find((l) => l === `ok ${c.name}` || l.startsWith(`not ok ${c.name}:`));
        assert.equal(line, `ok ${c.name}`, result.stderr);
    });
}

test('njs rejects an await inside call arguments, which Node accepts', () => {
    const awaitInArguments = SOURCE.replace(
        /const drainedValue = await lookup\(store, 'drained'\);\n\s*const drained = parseDrained\(drainedValue\);/,
        "const drained = parseDrained(await lookup(store, 'drained'));",
    );
    assert.notEqual(awaitInArguments, SOURCE, 'the regression source must differ from the function');
    const rejected = runOnNjs(awaitInArguments);
    assert.notEqual(rejected.status, 0);
    assert.match(rejected.stderr + rejected.stdout, /await in arguments not supported/);
});
