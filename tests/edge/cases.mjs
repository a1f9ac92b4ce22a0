// The routing cases, shared by the Node tests (geo_router.test.mjs) and the njs runner
// (njs/main.mjs): one list, two engines. Written in the syntax njs 0.7 accepts (one
// default export, no spread), because njs loads this file too.

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

function withKeys(overrides) {
    const table = {};
    Object.keys(TABLE).forEach(function (key) {
        table[key] = TABLE[key];
    });
    Object.keys(overrides).forEach(function (key) {
        table[key] = overrides[key];
    });
    return table;
}

const FAILOVER_STATUS_CODES = [500, 502, 503, 504];

// name, method, country (undefined: no header), table (default TABLE), regions (default
// sg, eu), storeThrows / kvsThrows (the store's get, or cf.kvs() itself, throws), and the
// expectations: region selected, group (origin ids of the origin group, null for none,
// undefined for "not checked"), viewer (x-viewer-country, default the country).
const CASES = [
    { name: 'US viewer goes to sg', method: 'GET', country: 'US', region: 'sg', group: ['sg', 'eu'] },
    { name: 'IN viewer goes to sg', method: 'POST', country: 'IN', region: 'sg', group: null },
    { name: 'configured EU country goes to eu', method: 'GET', country: 'DE', region: 'eu', group: ['eu', 'sg'] },
    { name: 'missing country header uses the default', method: 'GET', region: 'sg', viewer: 'unknown' },
    { name: 'unknown country uses the default', method: 'POST', country: 'BR', region: 'sg', group: null },
    {
        name: 'primary unhealthy moves POST to eu without a group',
        method: 'POST',
        country: 'US',
        table: withKeys({ 'health:sg': 'unhealthy' }),
        region: 'eu',
        group: null,
    },
    {
        name: 'primary unhealthy moves GET to eu, with sg as its failover',
        method: 'GET',
        country: 'US',
        table: withKeys({ 'health:sg': 'unhealthy' }),
        region: 'eu',
        group: ['eu', 'sg'],
    },
    {
        name: 'a draining region is treated as unhealthy',
        method: 'PUT',
        country: 'DE',
        table: withKeys({ 'health:eu': 'draining' }),
        region: 'sg',
        group: null,
    },
    {
        name: 'a region drained by configuration is avoided',
        method: 'HEAD',
        country: 'US',
        table: withKeys({ drained: '["sg"]' }),
        region: 'eu',
        group: ['eu', 'sg'],
    },
    {
        name: 'both unhealthy: the preferred region still serves',
        method: 'POST',
        country: 'US',
        table: withKeys({ 'health:sg': 'unhealthy', 'health:eu': 'unhealthy' }),
        region: 'sg',
        group: null,
    },
    {
        name: 'both unhealthy: GET keeps a failover to the other region',
        method: 'GET',
        country: 'DE',
        table: withKeys({ 'health:sg': 'unhealthy', 'health:eu': 'unhealthy' }),
        region: 'eu',
        group: ['eu', 'sg'],
    },
    {
        name: 'malformed route value falls back to the default',
        method: 'GET',
        country: 'DE',
        table: withKeys({ 'country:DE': 'mars' }),
        region: 'sg',
    },
    {
        name: 'malformed default falls back to the first region',
        method: 'GET',
        country: 'BR',
        table: withKeys({ default: '{"not":"a region"}' }),
        region: 'sg',
    },
    {
        name: 'malformed health and drained values are ignored',
        method: 'POST',
        country: 'US',
        table: withKeys({ 'health:sg': 'maybe', drained: 'not json' }),
        region: 'sg',
        group: null,
    },
    { name: 'missing keys everywhere: default region, no crash', method: 'GET', country: 'US', table: {}, region: 'sg', group: ['sg', 'eu'] },
    { name: 'KeyValueStore throwing: default region, no crash', method: 'OPTIONS', country: 'DE', storeThrows: true, region: 'sg', group: ['sg', 'eu'] },
    { name: 'cf.kvs() itself throwing: default region, no crash', method: 'GET', country: 'DE', kvsThrows: true, region: 'sg', group: ['sg', 'eu'] },
    { name: 'header injection in the country header is not trusted', method: 'GET', country: 'DE\r\nx-routed-region: eu', region: 'sg', viewer: 'unknown' },
    { name: 'lower-case or long country codes are not trusted', method: 'GET', country: 'de', region: 'sg', viewer: 'unknown' },
    { name: 'single origin: no origin group even for GET', method: 'GET', country: 'DE', regions: ['sg'], region: 'sg', group: null },
    {
        name: 'client-supplied routing headers are overwritten, every copy',
        method: 'GET',
        country: 'US',
        headers: {
            'x-routed-region': { value: 'eu', multiValue: [{ value: 'eu' }, { value: 'sg' }] },
            'x-viewer-country': { value: 'DE', multiValue: [{ value: 'DE' }, { value: 'FR' }] },
        },
        region: 'sg',
        group: ['sg', 'eu'],
    },
];

function viewerRequest(c) {
    const headers = { host: { value: 'api.example.com' } };
    if (c.country !== undefined) {
        headers['cloudfront-viewer-country'] = { value: c.country };
    }
    const extra = c.headers || {};
    Object.keys(extra).forEach(function (name) {
        headers[name] = extra[name];
    });
    return {
        version: '1.0',
        context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE' },
        viewer: { ip: '198.51.100.7' },
        request: { method: c.method, uri: '/api/orders', querystring: {}, headers: headers, cookies: {} },
    };
}

// Every value the header carries, through `value` and through `multiValue`.
function headerValues(request, name) {
    const header = request.headers[name];
    if (header === undefined) {
        return [];
    }
    const values = [header.value];
    (header.multiValue || []).forEach(function (item) {
        values.push(item.value);
    });
    return values;
}

function same(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
}

// What a case expects of the handler's result and the recorded calls; [] when it holds.
function verify(c, request, calls) {
    const failures = [];
    const expect = function (label, actual, expected) {
        if (!same(actual, expected)) {
            failures.push(label + ': got ' + JSON.stringify(actual) + ', want ' + JSON.stringify(expected));
        }
    };
    expect('selected origins', calls.selected, [c.region]);
    expect('kvs ids', calls.kvsIds, ['kvs-123']);
    const viewer = c.viewer !== undefined ? c.viewer : c.country !== undefined ? c.country : 'unknown';
    const routed = headerValues(request, 'x-routed-region').filter(function (value) {
        return value !== c.region;
    });
    expect('x-routed-region values other than the region', routed, []);
    expect('x-routed-region', request.headers['x-routed-region'].value, c.region);
    expect('x-routed-region multiValue', request.headers['x-routed-region'].multiValue, [{ value: c.region }]);
    const viewers = headerValues(request, 'x-viewer-country').filter(function (value) {
        return value !== viewer;
    });
    expect('x-viewer-country values other than the viewer', viewers, []);
    expect('x-viewer-country', request.headers['x-viewer-country'].value, viewer);
    expect('x-viewer-country multiValue', request.headers['x-viewer-country'].multiValue, [{ value: viewer }]);
    if (c.group !== undefined) {
        const groups = c.group === null ? [] : [{
            originIds: c.group.map(function (id) {
                return { originId: id };
            }),
            failoverCriteria: { statusCodes: FAILOVER_STATUS_CODES },
        }];
        expect('origin groups', calls.groups, groups);
    }
    return failures;
}

export default { TABLE: TABLE, CASES: CASES, viewerRequest: viewerRequest, verify: verify };
