//! The protocol loop: the client's open buffers, requests answered from a fresh
//! analysis of the buffer's directory, and diagnostics published after every
//! change for all files of that directory.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use infra_core::ProviderRegistry;
use infra_lang::{Config, Overlay};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References, Request as _,
};
use lsp_types::{
    CompletionOptions, CompletionParams, CompletionResponse, DocumentFormattingParams, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, HoverProviderCapability, MarkupContent, MarkupKind,
    OneOf, PublishDiagnosticsParams, ReferenceParams, ServerCapabilities, TextDocumentPositionParams,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Url,
};
use serde::de::DeserializeOwned;

use crate::analysis;
use crate::position::LineIndex;
use crate::{complete, context, navigate};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("language server protocol: {0}")]
    Protocol(String),
}

impl From<lsp_server::ProtocolError> for Error {
    fn from(e: lsp_server::ProtocolError) -> Self {
        Error::Protocol(e.to_string())
    }
}

/// The answer to a request that met a bug in the server.
const BUG: &str = "infra lsp failed on this request (a bug: please report it with the file that caused it)";

/// A buffer the client has open.
struct Document {
    text: String,
    /// The client's version of the text, sent back with its diagnostics so
    /// the client can tell them from those of an older text.
    version: i32,
    /// The newest text of it that parsed: while a line is half typed, names
    /// declared elsewhere in the file are still offered.
    parsed: Option<String>,
}

struct Server<'c> {
    connection: &'c Connection,
    registry: ProviderRegistry,
    documents: BTreeMap<PathBuf, Document>,
}

/// Runs the protocol on `connection` from the `initialize` request to `exit`.
pub fn serve(connection: &Connection, registry: ProviderRegistry) -> Result<(), Error> {
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".to_string()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    };
    let capabilities = serde_json::to_value(capabilities).map_err(|e| Error::Protocol(e.to_string()))?;
    connection.initialize(capabilities).map_err(|e| {
        Error::Protocol(format!(
            "no editor started a session ({e}): the input closed, or was not the Language Server Protocol. \
             infra lsp is started by an editor; editors/README.md says how"
        ))
    })?;
    let mut server = Server { connection, registry, documents: BTreeMap::new() };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection.handle_shutdown(&request)? {
                    return Ok(());
                }
                let id = request.id.clone();
                // A bug met on one request answers that request with an error;
                // the editor keeps its server and the user's other requests.
                let response = std::panic::catch_unwind(AssertUnwindSafe(|| server.answer(request)))
                    .unwrap_or_else(|_| Response::new_err(id, ErrorCode::InternalError as i32, BUG.to_string()));
                server.send(Message::Response(response))?;
            }
            Message::Notification(notification) => {
                if let Ok(result) = std::panic::catch_unwind(AssertUnwindSafe(|| server.notice(notification))) {
                    result?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

fn params<P: DeserializeOwned>(value: serde_json::Value) -> Result<P, String> {
    serde_json::from_value(value).map_err(|e| format!("invalid parameters: {e}"))
}

fn path_of(uri: &Url) -> Option<PathBuf> {
    uri.to_file_path().ok().map(|p| infra_lang::normal_path(&p))
}

impl Server<'_> {
    fn send(&self, message: Message) -> Result<(), Error> {
        self.connection.sender.send(message).map_err(|e| Error::Protocol(e.to_string()))
    }

    fn answer(&self, request: Request) -> Response {
        let id = request.id.clone();
        let result = match request.method.as_str() {
            Completion::METHOD => params(request.params).map(|p| self.completion(p)),
            HoverRequest::METHOD => params(request.params).map(|p| self.hover(p)),
            GotoDefinition::METHOD => params(request.params).map(|p| self.definition(p)),
            References::METHOD => params(request.params).map(|p| self.references(p)),
            Formatting::METHOD => params(request.params).map(|p| self.formatting(p)),
            DocumentSymbolRequest::METHOD => params(request.params).map(|p| self.outline(p)),
            other => {
                return Response::new_err(
                    id,
                    ErrorCode::MethodNotFound as i32,
                    format!("infra lsp does not answer {other}"),
                );
            }
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err(message) => Response::new_err(id, ErrorCode::InvalidParams as i32, message),
        }
    }

    fn notice(&mut self, notification: Notification) -> Result<(), Error> {
        let changed = match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                params(notification.params).ok().map(|p: lsp_types::DidOpenTextDocumentParams| {
                    self.edit(&p.text_document.uri, Some((p.text_document.text, p.text_document.version)))
                })
            }
            DidChangeTextDocument::METHOD => {
                params(notification.params).ok().and_then(|p: lsp_types::DidChangeTextDocumentParams| {
                    // Full sync: the last change holds the whole text.
                    let text = p.content_changes.into_iter().last()?.text;
                    Some(self.edit(&p.text_document.uri, Some((text, p.text_document.version))))
                })
            }
            DidSaveTextDocument::METHOD => params(notification.params)
                .ok()
                .map(|p: lsp_types::DidSaveTextDocumentParams| path_of(&p.text_document.uri)),
            DidCloseTextDocument::METHOD => params(notification.params)
                .ok()
                .map(|p: lsp_types::DidCloseTextDocumentParams| self.edit(&p.text_document.uri, None)),
            _ => None,
        };
        match changed.flatten() {
            Some(path) => self.publish(&path),
            None => Ok(()),
        }
    }

    /// Records a buffer's new text and version (`None`: closed, the file on
    /// disk counts again).
    fn edit(&mut self, uri: &Url, text: Option<(String, i32)>) -> Option<PathBuf> {
        let path = path_of(uri)?;
        match text {
            Some((text, version)) => {
                let parsed = infra_syntax::parse(infra_syntax::FileId(0), &text).is_ok();
                let empty = Document { text: String::new(), version, parsed: None };
                let document = self.documents.entry(path.clone()).or_insert(empty);
                if parsed {
                    document.parsed = Some(text.clone());
                }
                document.text = text;
                document.version = version;
            }
            None => {
                self.documents.remove(&path);
            }
        }
        Some(path)
    }

    /// Checks the directory of `path` and publishes every file's diagnostics.
    fn publish(&self, path: &Path) -> Result<(), Error> {
        let Some(dir) = path.parent() else { return Ok(()) };
        let analysis = analysis::analyse(dir, &self.overlay(false), &self.registry);
        for (file, diagnostics) in analysis::by_file(&analysis, path) {
            let Ok(uri) = Url::from_file_path(&file) else { continue };
            let version = self.documents.get(&file).map(|d| d.version);
            let params = PublishDiagnosticsParams { uri, diagnostics, version };
            let params = serde_json::to_value(params).map_err(|e| Error::Protocol(e.to_string()))?;
            self.send(Message::Notification(Notification::new(PublishDiagnostics::METHOD.to_string(), params)))?;
        }
        Ok(())
    }

    /// The open buffers as files: their texts, or for names (`last_parsed`)
    /// the newest text of each that parsed.
    fn overlay(&self, last_parsed: bool) -> Overlay {
        self.documents
            .iter()
            .map(|(path, d)| {
                let text = if last_parsed { d.parsed.as_ref().unwrap_or(&d.text) } else { &d.text };
                (path.clone(), text.clone())
            })
            .collect()
    }

    /// The buffer at a position: its text, the offset, and its directory's
    /// configuration for looking names up.
    fn at(&self, position: &TextDocumentPositionParams) -> Option<(String, usize, Config)> {
        let path = path_of(&position.text_document.uri)?;
        let text = self.text_of(&position.text_document.uri)?;
        let offset = LineIndex::new(&text).offset(position.position);
        // Names need only the loaded configuration, not the checks.
        let (config, _) = infra_lang::load_with(path.parent()?, &self.overlay(true));
        Some((text, offset, config))
    }

    fn completion(&self, p: CompletionParams) -> serde_json::Value {
        let Some((text, offset, config)) = self.at(&p.text_document_position) else {
            return serde_json::Value::Null;
        };
        let place = context::place(&text, offset);
        let items = complete::complete(&place, &config, &self.registry);
        to_json(CompletionResponse::Array(items))
    }

    fn hover(&self, p: HoverParams) -> serde_json::Value {
        let Some((text, offset, config)) = self.at(&p.text_document_position_params) else {
            return serde_json::Value::Null;
        };
        match navigate::hover(&text, offset, &config, &self.registry) {
            Some(value) => to_json(Hover {
                contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }),
                range: None,
            }),
            None => serde_json::Value::Null,
        }
    }

    fn definition(&self, p: GotoDefinitionParams) -> serde_json::Value {
        let Some((text, offset, config)) = self.at(&p.text_document_position_params) else {
            return serde_json::Value::Null;
        };
        match navigate::definition(&text, offset, &config, &self.registry) {
            Some(location) => to_json(GotoDefinitionResponse::Scalar(location)),
            None => serde_json::Value::Null,
        }
    }

    fn references(&self, p: ReferenceParams) -> serde_json::Value {
        let Some((text, offset, config)) = self.at(&p.text_document_position) else {
            return serde_json::Value::Null;
        };
        let include = p.context.include_declaration;
        to_json(navigate::references(&text, offset, &config, &self.registry, include))
    }

    fn outline(&self, p: lsp_types::DocumentSymbolParams) -> serde_json::Value {
        match self.text_of(&p.text_document.uri) {
            Some(text) => to_json(crate::outline::outline(&text)),
            None => serde_json::Value::Null,
        }
    }

    /// The buffer's text, or the file's when it is not open.
    fn text_of(&self, uri: &Url) -> Option<String> {
        let path = path_of(uri)?;
        self.documents.get(&path).map(|d| d.text.clone()).or_else(|| std::fs::read_to_string(&path).ok())
    }

    /// `infra fmt` of the buffer: one edit replacing the text, none when it is
    /// already formatted or does not parse (its diagnostics say why).
    fn formatting(&self, p: DocumentFormattingParams) -> serde_json::Value {
        let Some(text) = self.text_of(&p.text_document.uri) else {
            return serde_json::Value::Null;
        };
        if infra_syntax::parse(infra_syntax::FileId(0), &text).is_err() {
            return serde_json::Value::Null;
        }
        let formatted = infra_syntax::format::format(&text);
        let edits = if formatted == text {
            Vec::new()
        } else {
            vec![TextEdit { range: LineIndex::new(&text).full_range(), new_text: formatted }]
        };
        to_json(edits)
    }
}

fn to_json<T: serde::Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
