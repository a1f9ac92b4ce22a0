// Loads components/edge/geo_router.js as CloudFront does: the `cloudfront` import is
// replaced by a stub that records origin selection and origin groups, and reads the
// KeyValueStore from a plain object. Shared by the unit tests and route.mjs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

export const SOURCE_URL = new URL('../../components/edge/geo_router.js', import.meta.url);
export const SOURCE = readFileSync(SOURCE_URL, 'utf8');
const IMPORT = "import cf from 'cloudfront';";
const SETTINGS_LINE = /^const SETTINGS = .*;$/m;

class KeyNotFound extends Error {}

export function load({ table, regions = ['sg', 'eu'], storeThrows = false }) {
    assert.ok(SOURCE.startsWith(IMPORT + '\n'), 'the function must start with the cloudfront import');
    assert.match(SOURCE, SETTINGS_LINE);
    const calls = { selected: [], groups: [], kvsIds: [] };
    const cf = {
        kvs(id) {
            calls.kvsIds.push(id);
            return {
                async get(key) {
                    if (storeThrows) throw new Error('KeyValueStore unavailable');
                    if (!(key in table)) throw new KeyNotFound(key);
                    return table[key];
                },
            };
        },
        selectRequestOriginById(id) {
            calls.selected.push(id);
        },
        createRequestOriginGroup(group) {
            calls.groups.push(JSON.parse(JSON.stringify(group)));
        },
    };
    const settings = `const SETTINGS = ${JSON.stringify({ kvsId: 'kvs-123', regions })};`;
    const code = SOURCE.replace(IMPORT, '').replace(SETTINGS_LINE, settings) + '\nhandler;';
    const handler = vm.runInNewContext(code, { cf, console });
    return { handler, calls };
}

export function viewerRequest(method, country, extraHeaders = {}) {
    const headers = { host: { value: 'api.example.com' }, ...extraHeaders };
    if (country !== undefined) headers['cloudfront-viewer-country'] = { value: country };
    return {
        version: '1.0',
        context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE' },
        viewer: { ip: '198.51.100.7' },
        request: { method, uri: '/api/orders', querystring: {}, headers, cookies: {} },
    };
}
