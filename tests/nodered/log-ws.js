// Preloaded into Node-RED by bridge/tests/nodered.rs (`node -r`): prints
// every WebSocket command and HTTP request the Home Assistant nodes send
// to the bridge, and every error answer, on stderr, so the test can list
// what the nodes needed.
const path = require('path');
const http = require('http');

function patch(ws) {
    if (ws.prototype.__hearthLogged) return;
    ws.prototype.__hearthLogged = true;
    const send = ws.prototype.send;
    ws.prototype.send = function (data, ...rest) {
        try {
            for (const m of [].concat(JSON.parse(String(data)))) {
                if (m && m.type && m.type !== 'auth') console.error(`HEARTH-WS-SEND ${m.type}`);
            }
        } catch (e) {}
        return send.call(this, data, ...rest);
    };
    const emit = ws.prototype.emit;
    ws.prototype.emit = function (event, data, ...rest) {
        if (event === 'message') {
            try {
                for (const m of [].concat(JSON.parse(String(data)))) {
                    if (m && m.type === 'result' && m.success === false) {
                        console.error(`HEARTH-WS-ERROR ${JSON.stringify(m.error)}`);
                    }
                }
            } catch (e) {}
        }
        return emit.call(this, event, data, ...rest);
    };
}

const contrib = path.join(__dirname, 'node_modules', 'node-red-contrib-home-assistant-websocket');
for (const from of [contrib, __dirname]) {
    try {
        patch(require(require.resolve('ws', { paths: [from] })));
    } catch (e) {
        console.error(`HEARTH-WS-PATCH failed from ${from}: ${e}`);
    }
}

const request = http.request;
http.request = function (...args) {
    const req = request.apply(this, args);
    const target = process.env.HEARTH_ADDR;
    const opts = typeof args[0] === 'object' && !(args[0] instanceof URL) ? args[0] : {};
    const host = `${opts.hostname || opts.host || ''}:${opts.port || ''}`;
    if (target && host === target) console.error(`HEARTH-HTTP ${opts.method || 'GET'} ${opts.path}`);
    return req;
};
