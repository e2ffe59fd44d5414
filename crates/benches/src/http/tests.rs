//! Response framing: Content-Length, chunked with trailers, back-to-back responses.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Connection, Response, get_request, get_request_with};

/// Serves `responses` (raw bytes) in order, one per request read, over an in-memory pipe.
async fn exchange(responses: &[&str]) -> Vec<std::io::Result<Response>> {
    let (client, mut server) = tokio::io::duplex(4096);
    let raw: Vec<Vec<u8>> = responses
        .iter()
        .map(|response| response.as_bytes().to_vec())
        .collect();
    let server_task = tokio::spawn(async move {
        let mut request = vec![0u8; 1024];
        for response in raw {
            let _ = server.read(&mut request).await;
            // Dribble the response out in small pieces to exercise partial reads.
            for piece in response.chunks(7) {
                if server.write_all(piece).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut connection = Connection::new(client);
    let mut results = Vec::new();
    for _ in responses {
        results.push(connection.send(&get_request("/fhir/Patient/1")).await);
    }
    let _ = server_task.await;
    results
}

#[tokio::test]
async fn content_length_and_chunked_responses_on_one_connection() {
    let results = exchange(&[
        "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: 11\r\n\r\n{\"id\":\"1\"}\n",
        "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
    ])
    .await;
    let results: Vec<Response> = results
        .into_iter()
        .map(|result| result.expect("a framed response"))
        .collect();
    assert_eq!(
        results,
        [
            Response {
                status: 200,
                body_bytes: 11
            },
            Response {
                status: 404,
                body_bytes: 8
            },
            Response {
                status: 204,
                body_bytes: 0
            },
        ]
    );
}

#[tokio::test]
async fn a_response_without_framing_is_an_error() {
    let results = exchange(&["HTTP/1.1 200 OK\r\n\r\nbody"]).await;
    assert!(results[0].is_err());
}

#[test]
fn extra_headers_come_before_the_blank_line() {
    assert_eq!(
        get_request("/fhir/Patient/1"),
        b"GET /fhir/Patient/1 HTTP/1.1\r\nHost: bench\r\nAccept: application/fhir+json\r\n\r\n"
    );
    assert_eq!(
        String::from_utf8(get_request_with(
            "/fhir/Patient/1",
            &[("Authorization", "Bearer abc")]
        ))
        .expect("ASCII"),
        "GET /fhir/Patient/1 HTTP/1.1\r\nHost: bench\r\nAccept: application/fhir+json\r\nAuthorization: Bearer abc\r\n\r\n"
    );
}
