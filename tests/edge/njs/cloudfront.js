// The `cloudfront` module as njs loads it for the runner: every call goes to the stub the
// runner installed for the current case (tests/edge/cloudfront_stub.mjs).
const current = { stub: null };

function stub() {
    if (current.stub === null) {
        throw new Error('no stub installed');
    }
    return current.stub.cf;
}

export default {
    install: function (installed) {
        current.stub = installed;
    },
    kvs: function (id) {
        return stub().kvs(id);
    },
    selectRequestOriginById: function (id) {
        return stub().selectRequestOriginById(id);
    },
    createRequestOriginGroup: function (group) {
        return stub().createRequestOriginGroup(group);
    },
};
