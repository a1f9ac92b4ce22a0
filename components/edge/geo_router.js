import cf from 'cloudfront';

// Viewer-request router (runtime cloudfront-js-2.0). Picks the region that serves a
// request from the viewer's country and the routing table in the KeyValueStore, steers
// around a region marked unhealthy, and for idempotent methods adds the other region
// as a per-request failover origin. The table is data: changing a route or draining a
// region is a KeyValueStore write, never a republish.
//
// KeyValueStore keys (values are region ids, which are also the origin ids):
//   country:<ISO 3166-1 alpha-2>   region for viewers in that country
//   default                        region for everyone else
//   health:<region>                healthy | unhealthy | draining
//   drained                        JSON list of regions drained by configuration
//
// No `await` inside call arguments or closures: "async arguments and closures are not
// supported" (AWS, functions-javascript-runtime-20.html). Tests run this on njs too.
//
// Rendered by components/edge.py, which rewrites this one line with the real values.
const SETTINGS = { "kvsId": "", "regions": ["sg", "eu"] };

const FAILOVER_METHODS = { GET: true, HEAD: true, OPTIONS: true };
const FAILOVER_STATUS_CODES = [500, 502, 503, 504];
const UNAVAILABLE = { unhealthy: true, draining: true };
const COUNTRY = /^[A-Z]{2}$/;

function openStore() {
    try {
        return cf.kvs(SETTINGS.kvsId);
    } catch (error) {
        // The store failing never fails a request: every lookup then misses.
        return null;
    }
}

async function lookup(store, key) {
    if (store === null) {
        return null;
    }
    try {
        return await store.get(key);
    } catch (error) {
        // A missing key, or the store itself failing, must never fail the request.
        return null;
    }
}

// Replaces every copy the viewer sent, `multiValue` included.
function setHeader(request, name, value) {
    request.headers[name] = { value: value, multiValue: [{ value: value }] };
}

function isRegion(value) {
    return typeof value === 'string' && SETTINGS.regions.indexOf(value) !== -1;
}

function parseDrained(value) {
    try {
        const parsed = JSON.parse(value);
        return Array.isArray(parsed) ? parsed : [];
    } catch (error) {
        return [];
    }
}

async function unavailableRegions(store) {
    const drainedValue = await lookup(store, 'drained');
    const drained = parseDrained(drainedValue);
    const down = {};
    for (let i = 0; i < SETTINGS.regions.length; i++) {
        const region = SETTINGS.regions[i];
        const health = await lookup(store, 'health:' + region);
        down[region] = UNAVAILABLE[health] === true || drained.indexOf(region) !== -1;
    }
    return down;
}

async function preferredRegion(store, country) {
    if (country !== 'unknown') {
        const routed = await lookup(store, 'country:' + country);
        if (isRegion(routed)) {
            return routed;
        }
    }
    const fallback = await lookup(store, 'default');
    return isRegion(fallback) ? fallback : SETTINGS.regions[0];
}

async function handler(event) {
    const request = event.request;
    const header = request.headers['cloudfront-viewer-country'];
    const country = header && COUNTRY.test(header.value) ? header.value : 'unknown';
    const store = openStore();

    const preferred = await preferredRegion(store, country);
    const down = await unavailableRegions(store);
    const others = SETTINGS.regions.filter(function (region) {
        return region !== preferred;
    });
    const healthyOthers = others.filter(function (region) {
        return !down[region];
    });
    // When every region is down, the preferred one is still the best guess.
    const chosen = !down[preferred] || healthyOthers.length === 0 ? preferred : healthyOthers[0];

    cf.selectRequestOriginById(chosen);
    // Idempotent requests also get a per-request failover to another region: a healthy
    // one if there is one, else any (the health flags may lag a recovery).
    const candidates = SETTINGS.regions.filter(function (region) {
        return region !== chosen;
    });
    const healthyCandidates = candidates.filter(function (region) {
        return !down[region];
    });
    const backup = healthyCandidates.length > 0 ? healthyCandidates[0] : candidates[0];
    if (FAILOVER_METHODS[request.method] === true && backup !== undefined) {
        // The shape of AWS's example (helper-functions-origin-modification.html).
        cf.createRequestOriginGroup({
            originIds: [{ originId: chosen }, { originId: backup }],
            failoverCriteria: { statusCodes: FAILOVER_STATUS_CODES },
        });
    }

    setHeader(request, 'x-viewer-country', country);
    setHeader(request, 'x-routed-region', chosen);
    return request;
}
