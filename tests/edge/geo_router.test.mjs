// The CloudFront Function, loaded as CloudFront loads it, against a stub `cloudfront`
// module: origin selection and origin-group calls are recorded and the KeyValueStore
// is fed from each case's table. Run with `node --test tests/edge/`.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import { SOURCE, SOURCE_URL, load as loadRouter, viewerRequest as event } from './load_router.mjs';

// The routing table of the committed sg stack.
const TABLE = {
    'country:US': 'sg',
    'country:IN': 'sg',
    'country:DE': 'eu',
    default: 'sg',
    'health:sg': 'healthy',
    'health:eu': 'healthy',
    drained: '[]',
};

function load({ table = TABLE, regions, storeThrows } = {}) {
    return loadRouter({ table, regions, storeThrows });
}

const CASES = [
    { name: 'US viewer goes to sg', method: 'GET', country: 'US', region: 'sg', group: ['sg', 'eu'] },
    { name: 'IN viewer goes to sg', method: 'POST', country: 'IN', region: 'sg', group: null },
    { name: 'configured EU country goes to eu', method: 'GET', country: 'DE', region: 'eu', group: ['eu', 'sg'] },
    { name: 'missing country header uses the default', method: 'GET', country: undefined, region: 'sg', viewer: 'unknown' },
    { name: 'unknown country uses the default', method: 'POST', country: 'BR', region: 'sg', group: null, viewer: 'BR' },
    {
        name: 'primary unhealthy moves POST to eu without a group',
        method: 'POST',
        country: 'US',
        table: { ...TABLE, 'health:sg': 'unhealthy' },
        region: 'eu',
        group: null,
    },
    {
        name: 'primary unhealthy moves GET to eu, with sg as its failover',
        method: 'GET',
        country: 'US',
        table: { ...TABLE, 'health:sg': 'unhealthy' },
        region: 'eu',
        group: ['eu', 'sg'],
    },
    {
        name: 'a draining region is treated as unhealthy',
        method: 'PUT',
        country: 'DE',
        table: { ...TABLE, 'health:eu': 'draining' },
        region: 'sg',
        group: null,
    },
    {
        name: 'a region drained by configuration is avoided',
        method: 'HEAD',
        country: 'US',
        table: { ...TABLE, drained: '["sg"]' },
        region: 'eu',
        group: ['eu', 'sg'],
    },
    {
        name: 'both unhealthy: the preferred region still serves',
        method: 'POST',
        country: 'US',
        table: { ...TABLE, 'health:sg': 'unhealthy', 'health:eu': 'unhealthy' },
        region: 'sg',
        group: null,
    },
    {
        name: 'both unhealthy: GET keeps a failover to the other region',
        method: 'GET',
        country: 'DE',
        table: { ...TABLE, 'health:sg': 'unhealthy', 'health:eu': 'unhealthy' },
        region: 'eu',
        group: ['eu', 'sg'],
    },
    {
        name: 'malformed route value falls back to the default',
        method: 'GET',
        country: 'DE',
        table: { ...TABLE, 'country:DE': 'mars' },
        region: 'sg',
    },
    {
        name: 'malformed default falls back to the first region',
        method: 'GET',
        country: 'BR',
        table: { ...TABLE, default: '{"not":"a region"}' },
        region: 'sg',
    },
    {
        name: 'malformed health and drained values are ignored',
        method: 'POST',
        country: 'US',
        table: { ...TABLE, 'health:sg': 'maybe', drained: 'not json' },
        region: 'sg',
        group: null,
    },
    {
        name: 'missing keys everywhere: default region, no crash',
        method: 'GET',
        country: 'US',
        table: {},
        region: 'sg',
        group: ['sg', 'eu'],
    },
    {
        name: 'KeyValueStore throwing: default region, no crash',
        method: 'OPTIONS',
        country: 'DE',
        storeThrows: true,
        region: 'sg',
        group: ['sg', 'eu'],
    },
    {
        name: 'header injection in the country header is not trusted',
        method: 'GET',
        country: 'DE\r\nx-routed-region: eu',
        region: 'sg',
        viewer: 'unknown',
    },
    {
        name: 'lower-case or long country codes are not trusted',
        method: 'GET',
        country: 'de',
        region: 'sg',
        viewer: 'unknown',
    },
    {
        name: 'single origin: no origin group even for GET',
        method: 'GET',
        country: 'DE',
        regions: ['sg'],
        region: 'sg',
        group: null,
    },
];

for (const c of CASES) {
    test(c.name, async () => {
        const { handler, calls } = load({ table: c.table, regions: c.regions, storeThrows: c.storeThrows });
        const request = await handler(event(c.method, c.country));
        assert.deepEqual(calls.selected, [c.region]);
        assert.deepEqual(calls.kvsIds, ['kvs-123']);
        assert.equal(request.headers['x-routed-region'].value, c.region);
        const expectedViewer = c.viewer ?? c.country;
        assert.equal(request.headers['x-viewer-country'].value, expectedViewer);
        if (c.group !== undefined) {
            const expected = c.group === null ? [] : [
                { originIds: c.group, failoverCriteria: { statusCodes: [500, 502, 503, 504] } },
            ];
            assert.deepEqual(calls.groups, expected);
        }
    });
}

test('client-supplied routing headers are overwritten', async () => {
    const { handler } = load();
    const spoofed = { 'x-routed-region': { value: 'eu' }, 'x-viewer-country': { value: 'DE' } };
    const request = await handler(event('GET', 'US', spoofed));
    assert.equal(request.headers['x-routed-region'].value, 'sg');
    assert.equal(request.headers['x-viewer-country'].value, 'US');
});

test('the request itself is returned, not a response', async () => {
    const { handler } = load();
    const input = event('POST', 'US');
    const output = await handler(input);
    assert.equal(output, input.request);
    assert.equal(output.uri, '/api/orders');
    assert.equal(output.method, 'POST');
});

test('never a method other than GET, HEAD or OPTIONS gets an origin group', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const { handler, calls } = load();
        await handler(event(method, 'US'));
        assert.deepEqual(calls.groups, [], method);
    }
});

test('source stays well under the 10 KB CloudFront Functions limit', () => {
    const bytes = statSync(SOURCE_URL).size;
    assert.ok(bytes < 10 * 1024, `${bytes} bytes`);
});

test('source uses nothing cloudfront-js-2.0 forbids', () => {
    for (const forbidden of ['eval(', 'setTimeout', 'setInterval', 'fetch(', 'require(', 'XMLHttpRequest', 'new Function']) {
        assert.ok(!SOURCE.includes(forbidden), forbidden);
    }
});
