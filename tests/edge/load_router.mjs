// Loads components/edge/geo_router.js as CloudFront does: the `cloudfront` import is
// replaced by the shared stub (cloudfront_stub.mjs), which records origin selection and
// origin groups and reads the KeyValueStore from a plain object. Shared by the unit tests
// and route.mjs; njs.test.mjs loads the same source on njs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import stubs from './cloudfront_stub.mjs';

export const SOURCE_URL = new URL('../../components/edge/geo_router.js', import.meta.url);
export const SOURCE = readFileSync(SOURCE_URL, 'utf8');
export const IMPORT = "import cf from 'cloudfront';";
export const SETTINGS_LINE = /^const SETTINGS = .*;$/m;

/** The source with its SETTINGS line filled in, as components/edge.py renders it. */
export function render(regions, source = SOURCE) {
    assert.ok(source.startsWith(IMPORT + '\n'), 'the function must start with the cloudfront import');
    assert.match(source, SETTINGS_LINE);
    const settings = `const SETTINGS = ${JSON.stringify({ kvsId: 'kvs-123', regions })};`;
    return source.replace(SETTINGS_LINE, settings);
}

export function load({ table, regions = ['sg', 'eu'], storeThrows = false, kvsThrows = false }) {
    const { cf, calls } = stubs.create({ table, storeThrows, kvsThrows });
    const code = render(regions).replace(IMPORT, '') + '\nhandler;';
    const handler = vm.runInNewContext(code, { cf, console });
    return { handler, calls };
}
