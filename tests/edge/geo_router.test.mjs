// The CloudFront Function on Node, loaded as CloudFront loads it, against the stub
// `cloudfront` module: origin selection and origin-group calls are recorded and the
// KeyValueStore is fed from each case's table. The same cases run on njs in
// njs.test.mjs. Run with `node --test tests/edge/`.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import cases from './cases.mjs';
import stubs from './cloudfront_stub.mjs';
import { SOURCE, SOURCE_URL, load } from './load_router.mjs';

for (const c of cases.CASES) {
    test(c.name, async () => {
        const { handler, calls } = load({
            table: c.table ?? cases.TABLE,
            regions: c.regions,
            storeThrows: c.storeThrows,
            kvsThrows: c.kvsThrows,
        });
        const request = await handler(cases.viewerRequest(c));
        assert.deepEqual(cases.verify(c, request, calls), []);
    });
}

test('the request itself is returned, not a response', async () => {
    const { handler } = load({ table: cases.TABLE });
    const input = cases.viewerRequest({ method: 'POST', country: 'US' });
    const output = await handler(input);
    assert.equal(output, input.request);
    assert.equal(output.uri, '/api/orders');
    assert.equal(output.method, 'POST');
});

test('never a method other than GET, HEAD or OPTIONS gets an origin group', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const { handler, calls } = load({ table: cases.TABLE });
        await handler(cases.viewerRequest({ method, country: 'US' }));
        assert.deepEqual(calls.groups, [], method);
    }
});

test('the stub rejects origin ids passed as bare strings, as the edge would', () => {
    const { cf } = stubs.create({ table: cases.TABLE });
    assert.throws(
        () => cf.createRequestOriginGroup({ originIds: ['sg', 'eu'], failoverCriteria: { statusCodes: [503] } }),
        /originId/,
    );
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

