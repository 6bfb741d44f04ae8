// Starts `infra lsp` for .infra files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("infra").get("path", "infra");
  client = new LanguageClient(
    "infra",
    "infra",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "infra" }] },
  );
  context.subscriptions.push(client);
  client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
