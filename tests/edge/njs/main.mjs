// The njs runner: the same cases as the Node tests, against the function as rendered,
// loaded as a module by njs (the engine family of cloudfront-js-2.0). njs.test.mjs writes
// router_multi.js and router_single.js (the function with its SETTINGS line filled in and
// `export default handler;` appended) and this directory's cloudfront.js, as the module
// `cloudfront`, into a scratch directory on njs's module path.
// Prints `ok <name>` or `not ok <name>: <why>` per case; exits non-zero on any failure.
import cf from 'cloudfront';
import cases from 'cases.mjs';
import stubs from 'cloudfront_stub.mjs';
import multi from 'router_multi.js';
import single from 'router_single.js';

async function runCase(c) {
    const stub = stubs.create({ table: c.table === undefined ? cases.TABLE : c.table, storeThrows: c.storeThrows, kvsThrows: c.kvsThrows });
    cf.install(stub);
    const handler = c.regions !== undefined && c.regions.length === 1 ? single : multi;
    const event = cases.viewerRequest(c);
    const request = await handler(event);
    return cases.verify(c, request, stub.calls);
}

async function runAll() {
    let failed = 0;
    for (let i = 0; i < cases.CASES.length; i++) {
        const c = cases.CASES[i];
        let failures;
        try {
            failures = await runCase(c);
        } catch (error) {
            failures = ['threw ' + error];
        }
        if (failures.length === 0) {
            console.log('ok ' + c.name);
        } else {
            failed++;
            console.log('not ok ' + c.name + ': ' + failures.join('; '));
        }
    }
    console.log('njs: ' + cases.CASES.length + ' cases, ' + failed + ' failing');
    if (failed > 0) {
        throw new Error(failed + ' case(s) failed under njs');
    }
}

runAll();
