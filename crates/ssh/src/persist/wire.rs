//! The messages between an `infra` run and a connection keeper, over the
//! keeper's unix socket: one request per socket connection, each message a
//! length-prefixed frame of tagged fields. Remote output is bytes, so the
//! frames are binary, not JSON.

use infra_core::{ProviderError, ProviderErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bumped whenever a frame changes: it is part of the socket's name, so a run
/// never talks to a keeper of another layout.
pub const PROTOCOL: u32 = 1;
/// A frame larger than this is refused: no command's output or input is near it.
const MAX_FRAME: usize = 1 << 30;

const EXEC: u8 = 1;
const SOCKET: u8 = 2;
const HELLO: u8 = 3;
const OUTPUT: u8 = 10;
const ERROR: u8 = 11;
const SOCKET_OPEN: u8 = 12;
const GREETING: u8 = 13;

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Run a command (already quoted, sudo included) with this input.
    Exec { command: String, stdin: Vec<u8> },
    /// Connect to a unix socket on the server; the socket connection then carries its bytes.
    Socket { path: String },
    /// Is the kept connection alive, and whose host key did it see?
    Hello,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Output {
        code: u32,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// `started`: whether the request reached the server. One that did not may
    /// be sent again on a connection of the run's own.
    Error {
        kind: ProviderErrorKind,
        attribute: Option<String>,
        message: String,
        started: bool,
    },
    SocketOpen,
    Greeting {
        alive: bool,
        host_key: String,
    },
}

impl Reply {
    pub fn error(error: &ProviderError, started: bool) -> Reply {
        Reply::Error { kind: error.kind, attribute: error.attribute.clone(), message: error.message.clone(), started }
    }
}

pub fn kind_code(kind: ProviderErrorKind) -> u8 {
    match kind {
        ProviderErrorKind::Invalid => 0,
        ProviderErrorKind::Unavailable => 1,
        ProviderErrorKind::Failed => 2,
        ProviderErrorKind::Conflict => 3,
    }
}

pub fn kind_from_code(code: u8) -> ProviderErrorKind {
    match code {
        0 => ProviderErrorKind::Invalid,
        1 => ProviderErrorKind::Unavailable,
        3 => ProviderErrorKind::Conflict,
        _ => ProviderErrorKind::Failed,
    }
}

#[derive(Default)]
struct Frame(Vec<u8>);

impl Frame {
    fn tag(tag: u8) -> Frame {
        Frame(vec![tag])
    }
    fn byte(mut self, b: u8) -> Frame {
        self.0.push(b);
        self
    }
    fn bytes(mut self, data: &[u8]) -> Frame {
        self.0.extend_from_slice(&(data.len() as u64).to_be_bytes());
        self.0.extend_from_slice(data);
        self
    }
    fn number(mut self, n: u32) -> Frame {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
}

/// Reads a frame's fields in order; any shortfall is a malformed frame.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take(&mut self, n: usize) -> std::io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(malformed());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn byte(&mut self) -> std::io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn number(&mut self) -> std::io::Result<u32> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
    fn bytes(&mut self) -> std::io::Result<Vec<u8>> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        let n = usize::try_from(u64::from_be_bytes(b)).map_err(|_| malformed())?;
        Ok(self.take(n)?.to_vec())
    }
    fn text(&mut self) -> std::io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| malformed())
    }
}

fn malformed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "a malformed message from the connection keeper")
}

impl Request {
    fn frame(&self) -> Frame {
        match self {
            Request::Exec { command, stdin } => Frame::tag(EXEC).bytes(command.as_bytes()).bytes(stdin),
            Request::Socket { path } => Frame::tag(SOCKET).bytes(path.as_bytes()),
            Request::Hello => Frame::tag(HELLO),
        }
    }

    fn parse(frame: &[u8]) -> std::io::Result<Request> {
        let mut fields = Fields(frame);
        Ok(match fields.byte()? {
            EXEC => Request::Exec { command: fields.text()?, stdin: fields.bytes()? },
            SOCKET => Request::Socket { path: fields.text()? },
            HELLO => Request::Hello,
            _ => return Err(malformed()),
        })
    }
}

impl Reply {
    fn frame(&self) -> Frame {
        match self {
            Reply::Output { code, stdout, stderr } => Frame::tag(OUTPUT).number(*code).bytes(stdout).bytes(stderr),
            Reply::Error { kind, attribute, message, started } => Frame::tag(ERROR)
                .byte(kind_code(*kind))
                .byte(u8::from(*started))
                .byte(u8::from(attribute.is_some()))
                .bytes(attribute.as_deref().unwrap_or_default().as_bytes())
                .bytes(message.as_bytes()),
            Reply::SocketOpen => Frame::tag(SOCKET_OPEN),
            Reply::Greeting { alive, host_key } => {
                Frame::tag(GREETING).byte(u8::from(*alive)).bytes(host_key.as_bytes())
            }
        }
    }

    fn parse(frame: &[u8]) -> std::io::Result<Reply> {
        let mut fields = Fields(frame);
        Ok(match fields.byte()? {
            OUTPUT => Reply::Output { code: fields.number()?, stdout: fields.bytes()?, stderr: fields.bytes()? },
            ERROR => {
                let kind = kind_from_code(fields.byte()?);
                let started = fields.byte()? != 0;
                let has_attribute = fields.byte()? != 0;
                let attribute = fields.text()?;
                Reply::Error { kind, attribute: has_attribute.then_some(attribute), message: fields.text()?, started }
            }
            SOCKET_OPEN => Reply::SocketOpen,
            GREETING => Reply::Greeting { alive: fields.byte()? != 0, host_key: fields.text()? },
            _ => return Err(malformed()),
        })
    }
}

async fn write_frame(stream: &mut (impl AsyncWrite + Unpin), frame: Frame) -> std::io::Result<()> {
    stream.write_all(&(frame.0.len() as u64).to_be_bytes()).await?;
    stream.write_all(&frame.0).await?;
    stream.flush().await
}

async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut length = [0; 8];
    stream.read_exact(&mut length).await?;
    let length = usize::try_from(u64::from_be_bytes(length)).map_err(|_| malformed())?;
    if length > MAX_FRAME {
        return Err(malformed());
    }
    let mut frame = vec![0; length];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

pub async fn send_request(stream: &mut (impl AsyncWrite + Unpin), request: &Request) -> std::io::Result<()> {
    write_frame(stream, request.frame()).await
}

pub async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Request> {
    Request::parse(&read_frame(stream).await?)
}

pub async fn send_reply(stream: &mut (impl AsyncWrite + Unpin), reply: &Reply) -> std::io::Result<()> {
    write_frame(stream, reply.frame()).await
}

pub async fn read_reply(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Reply> {
    Reply::parse(&read_frame(stream).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_message_reads_back_as_written() {
        let requests = [
            Request::Exec { command: "bash -c 'x'".into(), stdin: vec![0, 255, 10] },
            Request::Socket { path: "/var/run/docker.sock".into() },
            Request::Hello,
        ];
        for request in requests {
            let mut buffer = Vec::new();
            send_request(&mut buffer, &request).await.expect("in-memory frames");
            assert_eq!(read_request(&mut buffer.as_slice()).await.expect("in-memory frames"), request);
        }
        let replies = [
            Reply::Output { code: 3, stdout: b"out".to_vec(), stderr: vec![] },
            Reply::Error {
                kind: ProviderErrorKind::Unavailable,
                attribute: None,
                message: "lost".into(),
                started: false,
            },
            Reply::Error {
                kind: ProviderErrorKind::Invalid,
                attribute: Some(String::new()),
                message: "m".into(),
                started: true,
            },
            Reply::SocketOpen,
            Reply::Greeting { alive: true, host_key: "ssh-ed25519 AAAA".into() },
        ];
        for reply in replies {
            let mut buffer = Vec::new();
            send_reply(&mut buffer, &reply).await.expect("in-memory frames");
            assert_eq!(read_reply(&mut buffer.as_slice()).await.expect("in-memory frames"), reply);
        }
    }

    #[tokio::test]
    async fn a_truncated_or_unknown_frame_is_an_error_not_a_panic() {
        let mut buffer = Vec::new();
        send_reply(&mut buffer, &Reply::Output { code: 0, stdout: vec![1; 100], stderr: vec![] })
            .await
            .expect("in-memory frames");
        assert!(read_reply(&mut &buffer[..buffer.len() - 1]).await.is_err());
        let mut lying = Vec::new();
        write_frame(&mut lying, Frame::tag(OUTPUT).number(0).bytes(&[])).await.expect("in-memory frames");
        lying.truncate(lying.len() - 4);
        lying[7] -= 4;
        assert!(read_reply(&mut lying.as_slice()).await.is_err());
        let mut unknown = Vec::new();
        write_frame(&mut unknown, Frame::tag(99)).await.expect("in-memory frames");
        assert!(read_request(&mut unknown.as_slice()).await.is_err());
    }
}
