//! Is something answering there? A TCP connect, and for the local defaults a
//! word in the service's own protocol: that it is PostgreSQL letting the
//! `postgres` role in without a password, or Redis answering PING.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::url::Endpoint;

/// How long one connection attempt, or one read, may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to `endpoint`, trying each address its host resolves to,
/// each bounded by [`TIMEOUT`].
pub fn connect(endpoint: &Endpoint) -> Result<TcpStream, String> {
    let addresses = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|error| format!("{endpoint}: cannot resolve the host: {error}"))?;
    let mut last = format!("{endpoint}: the host resolves to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, TIMEOUT) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(TIMEOUT))
                    .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
                    .map_err(|error| format!("{endpoint}: {error}"))?;
                return Ok(stream);
            }
            Err(error) if address.to_string() == endpoint.to_string() => {
                last = format!("{endpoint}: {error}");
            }
            Err(error) => last = format!("{endpoint} ({address}): {error}"),
        }
    }
    Err(last)
}

/// Does PostgreSQL at `endpoint` let `user` into `database` without a
/// password? (The protocol's start-up exchange, then a polite goodbye.)
pub fn postgres_lets_in(endpoint: &Endpoint, user: &str, database: &str) -> Result<(), String> {
    let mut stream = connect(endpoint)?;
    stream
        .write_all(&startup_message(user, database))
        .map_err(|error| format!("{endpoint}: {error}"))?;
    let outcome = read_startup_reply(&mut stream).map_err(|error| format!("{endpoint}: {error}"));
    // Terminate: 'X', length 4. Best effort; the server copes without it.
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    outcome
}

/// A protocol 3.0 StartupMessage.
fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608_u32.to_be_bytes()); // 3.0
    for (key, value) in [("user", user), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let length = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// Reads the server's answer to a StartupMessage up to ReadyForQuery.
fn read_startup_reply(reader: &mut impl Read) -> Result<(), String> {
    loop {
        let mut header = [0_u8; 5];
        reader.read_exact(&mut header).map_err(io_error)?;
        let kind = header[0];
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        if !matches!(kind, b'R' | b'E' | b'S' | b'K' | b'N' | b'Z' | b'v')
            || !(4..=65_536).contains(&length)
        {
            return Err("the server does not speak PostgreSQL's protocol".to_owned());
        }
        let mut body = vec![0_u8; length as usize - 4];
        reader.read_exact(&mut body).map_err(io_error)?;
        match kind {
            b'R' => match body.get(..4) {
                Some([0, 0, 0, 0]) => {} // AuthenticationOk
                Some(code) => {
                    let code = u32::from_be_bytes([code[0], code[1], code[2], code[3]]);
                    return Err(format!(
                        "the server asks for a password (authentication request {code}{})",
                        match code {
                            3 => ", cleartext",
                            5 => ", md5",
                            10 => ", SASL/SCRAM",
                            _ => "",
                        }
                    ));
                }
                None => return Err("a malformed authentication request".to_owned()),
            },
            b'E' => return Err(format!("the server refused: {}", error_text(&body))),
            b'Z' => return Ok(()),
            _ => {} // ParameterStatus, BackendKeyData, NoticeResponse, NegotiateProtocolVersion
        }
    }
}

fn io_error(error: io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {} s", TIMEOUT.as_secs())
        }
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
        _ => error.to_string(),
    }
}

/// The severity and message of an ErrorResponse body.
fn error_text(body: &[u8]) -> String {
    let mut severity = "";
    let mut message = "";
    for field in body.split(|&byte| byte == 0) {
        let Some((&code, value)) = field.split_first() else {
            continue;
        };
        let value = std::str::from_utf8(value).unwrap_or("?");
        match code {
            b'S' => severity = value,
            b'M' => message = value,
            _ => {}
        }
    }
    format!("{severity}: {message}")
}

/// Does Redis at `endpoint` answer PING (without a password)?
pub fn redis_answers(endpoint: &Endpoint) -> Result<(), String> {
    let mut stream = connect(endpoint)?;
    stream
        .write_all(b"PING\r\n")
        .map_err(|error| format!("{endpoint}: {error}"))?;
    read_pong(&mut stream).map_err(|error| format!("{endpoint}: {error}"))
}

fn read_pong(reader: &mut impl Read) -> Result<(), String> {
    let mut line = Vec::new();
    let mut byte = [0_u8; 1];
    while line.len() < 512 {
        reader.read_exact(&mut byte).map_err(io_error)?;
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end();
    if line == "+PONG" {
        Ok(())
    } else {
        Err(format!("PING got `{line}`, not `+PONG`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&u32::try_from(body.len() + 4).expect("small").to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn startup_message_layout() {
        let bytes = startup_message("postgres", "postgres");
        assert_eq!(&bytes[..4], &41_u32.to_be_bytes());
        assert_eq!(bytes.len(), 41);
        assert_eq!(&bytes[4..8], &[0, 3, 0, 0]);
        assert_eq!(&bytes[8..], b"user\0postgres\0database\0postgres\0\0");
    }

    #[test]
    fn trust_is_ok() {
        let mut reply = message(b'R', &[0, 0, 0, 0]);
        reply.extend(message(b'S', b"server_version\x0015.2\0"));
        reply.extend(message(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
        reply.extend(message(b'Z', b"I"));
        assert_eq!(read_startup_reply(&mut reply.as_slice()), Ok(()));
    }

    #[test]
    fn a_password_request_is_not_ok() {
        let reply = message(b'R', &[0, 0, 0, 10, b'S', b'C', b'R', b'A', b'M']);
        let error = read_startup_reply(&mut reply.as_slice()).expect_err("needs a password");
        assert!(
            error.contains("password") && error.contains("SCRAM"),
            "{error}"
        );
    }

    #[test]
    fn an_error_is_reported() {
        let mut reply = message(b'R', &[0, 0, 0, 0]);
        reply.extend(message(
            b'E',
            b"SFATAL\0C3D000\0Mdatabase \"postgres\" does not exist\0\0",
        ));
        assert_eq!(
            read_startup_reply(&mut reply.as_slice()),
            Err("the server refused: FATAL: database \"postgres\" does not exist".to_owned())
        );
    }

    #[test]
    fn something_else_is_not_postgres() {
        let reply = b"-ERR unknown command\r\n".to_vec();
        let error = read_startup_reply(&mut reply.as_slice()).expect_err("not postgres");
        assert!(error.contains("protocol"), "{error}");
        assert!(read_startup_reply(&mut [].as_slice()).is_err());
    }

    #[test]
    fn pong() {
        assert_eq!(read_pong(&mut b"+PONG\r\n".as_slice()), Ok(()));
        assert!(read_pong(&mut b"-NOAUTH Authentication required.\r\n".as_slice()).is_err());
        assert!(read_pong(&mut b"".as_slice()).is_err());
    }
}
