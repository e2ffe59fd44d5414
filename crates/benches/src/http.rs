//! A minimal HTTP/1.1 keep-alive client for the load driver: writes a request, reads exactly one
//! response (framed by `Content-Length` or chunked encoding) and reports its status and body size.
//! Just enough to drive a server without adding an HTTP client dependency; it does not pipeline.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// One keep-alive connection.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    /// Bytes read but not yet consumed (the start of the next response, if the server sent early).
    buffer: Vec<u8>,
}

/// What the driver needs to know about a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body_bytes: usize,
}

/// How the body of a response is delimited.
enum Framing {
    Length(usize),
    Chunked,
}

/// A `GET` request for `path`, asking for FHIR JSON.
pub fn get_request(path: &str) -> Vec<u8> {
    get_request_with(path, &[])
}

/// A `GET` request for `path`, asking for FHIR JSON, with extra `(name, value)` header lines
/// (e.g. `("Authorization", "Bearer …")`). Names and values are written as given: they must not
/// contain line breaks.
pub fn get_request_with(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let extra: usize = headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 4)
        .sum();
    let mut request = String::with_capacity(80 + path.len() + extra);
    request.push_str("GET ");
    request.push_str(path);
    request.push_str(" HTTP/1.1\r\nHost: bench\r\nAccept: application/fhir+json\r\n");
    for (name, value) in headers {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads the response.
    ///
    /// # Errors
    /// On IO errors, a closed connection, or a response this client cannot frame.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(position) = find(&self.buffer, b"\r\n\r\n") {
                break position;
            }
            self.read_more().await?;
        };
        let (status, framing) = parse_head(&self.buffer[..head_end])?;
        let body_start = head_end + 4;
        let (body_bytes, consumed) = match framing {
            Framing::Length(length) => {
                self.fill_to(body_start + length).await?;
                (length, body_start + length)
            }
            Framing::Chunked => self.read_chunks(body_start).await?,
        };
        self.buffer.drain(..consumed);
        Ok(Response { status, body_bytes })
    }

    /// Reads a chunked body starting at `position`; returns (body bytes, bytes consumed).
    async fn read_chunks(&mut self, mut position: usize) -> io::Result<(usize, usize)> {
        let mut body_bytes = 0;
        loop {
            let line_end = self.line_end(position).await?;
            let size_text =
                std::str::from_utf8(&self.buffer[position..line_end]).map_err(invalid)?;
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).map_err(invalid)?;
            position = line_end + 2;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let trailer_end = self.line_end(position).await?;
                    let empty = trailer_end == position;
                    position = trailer_end + 2;
                    if empty {
                        return Ok((body_bytes, position));
                    }
                }
            }
            self.fill_to(position + size + 2).await?;
            body_bytes += size;
            position += size + 2;
        }
    }

    /// The index of the next `\r\n` at or after `from`, reading as needed.
    async fn line_end(&mut self, from: usize) -> io::Result<usize> {
        loop {
            if let Some(offset) = self.buffer.get(from..).and_then(|rest| find(rest, b"\r\n")) {
                return Ok(from + offset);
            }
            self.read_more().await?;
        }
    }

    async fn fill_to(&mut self, length: usize) -> io::Result<()> {
        while self.buffer.len() < length {
            self.read_more().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<()> {
        self.buffer.reserve(16 * 1024);
        if self.stream.read_buf(&mut self.buffer).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(())
    }
}

/// Status code and body framing from the status line and headers.
fn parse_head(head: &[u8]) -> io::Result<(u16, Framing)> {
    let head = std::str::from_utf8(head).map_err(invalid)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .parse()
        .map_err(invalid)?;
    let mut framing = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            framing = Some(Framing::Length(value.parse().map_err(invalid)?));
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Some(Framing::Chunked);
            break;
        }
    }
    match framing {
        Some(framing) => Ok((status, framing)),
        None if status == 204 || status == 304 || (100..200).contains(&status) => {
            Ok((status, Framing::Length(0)))
        }
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a response without Content-Length or chunked encoding",
        )),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(error: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests;
