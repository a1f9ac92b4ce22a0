// Routes requests through the real function for the Python failover simulation.
// stdin: {"table": {...}, "regions": [...], "requests": [{"method": "POST", "country": "US"}]}
// stdout: [{"region": "eu", "group": ["eu", "sg"] | null}, ...]
import { readFileSync } from 'node:fs';
import cases from './cases.mjs';
import { load } from './load_router.mjs';

const input = JSON.parse(readFileSync(0, 'utf8'));
const decisions = [];
for (const { method, country } of input.requests) {
    const { handler, calls } = load({ table: input.table, regions: input.regions });
    await handler(cases.viewerRequest({ method, country }));
    decisions.push({
        region: calls.selected[0],
        group: calls.groups.length ? calls.groups[0].originIds.map((item) => item.originId) : null,
    });
}
process.stdout.write(JSON.stringify(decisions));
