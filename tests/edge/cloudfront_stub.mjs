// A stand-in for CloudFront's `cloudfront` module: records origin selection and origin
// groups, and serves the KeyValueStore from a plain object. Shared by the Node loader and
// the njs runner, so both engines run the function against the same stub. Written in the
// syntax njs 0.7 accepts.

// createRequestOriginGroup() takes the shape of AWS's own example: `originIds` is a list
// of `{ originId }` objects and `failoverCriteria.statusCodes` a list of codes
// (docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
// helper-functions-origin-modification.html). Anything else throws here, as a wrong shape
// would fail the request at the edge.
function checkGroup(group) {
    const ids = group && group.originIds;
    if (!Array.isArray(ids) || ids.length !== 2) {
        throw new TypeError('originIds must list two origins');
    }
    ids.forEach(function (item) {
        if (item === null || typeof item !== 'object' || typeof item.originId !== 'string') {
            throw new TypeError('each of originIds must be { originId: <string> }');
        }
    });
    const criteria = group.failoverCriteria;
    if (!criteria || !Array.isArray(criteria.statusCodes) || criteria.statusCodes.length === 0) {
        throw new TypeError('failoverCriteria.statusCodes must list status codes');
    }
}

function create(options) {
    const table = options.table || {};
    const calls = { selected: [], groups: [], kvsIds: [] };
    const cf = {
        kvs: function (id) {
            calls.kvsIds.push(id);
            if (options.kvsThrows) {
                throw new Error('KeyValueStore not associated');
            }
            return {
                get: async function (key) {
                    if (options.storeThrows) {
                        throw new Error('KeyValueStore unavailable');
                    }
                    if (!(key in table)) {
                        throw new Error('key not found: ' + key);
                    }
                    return table[key];
                },
            };
        },
        selectRequestOriginById: function (id) {
            calls.selected.push(id);
        },
        createRequestOriginGroup: function (group) {
            checkGroup(group);
            calls.groups.push(JSON.parse(JSON.stringify(group)));
        },
    };
    return { cf: cf, calls: calls };
}

export default { create: create };
