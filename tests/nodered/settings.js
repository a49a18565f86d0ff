// Node-RED settings for bridge/tests/nodered.rs: flows and plain-text
// credentials from the user directory the test writes, no editor.
module.exports = {
    flowFile: 'flows.json',
    credentialSecret: false,
    disableEditor: true,
    uiHost: '127.0.0.1',
    logging: { console: { level: 'info', metrics: false, audit: false } },
    editorTheme: { projects: { enabled: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
};
