//! Tries TCP connect and listen, UDP bind, and name lookup; all must be denied (unsupported on
//! wasip1, denied by the sandbox on wasip2).

use hermetic_test_guests::Attempts;
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

fn main() {
    let mut a = Attempts::default();
    a.deny(
        "connect 127.0.0.1:80",
        TcpStream::connect("127.0.0.1:80").map(|s| format!("{:?}", s.peer_addr())),
    );
    a.deny(
        "bind tcp 127.0.0.1:0",
        TcpListener::bind("127.0.0.1:0").map(|l| format!("{:?}", l.local_addr())),
    );
    a.deny(
        "bind udp 127.0.0.1:0",
        UdpSocket::bind("127.0.0.1:0").map(|s| format!("{:?}", s.local_addr())),
    );
    a.deny(
        "resolve localhost:80",
        ("localhost", 80)
            .to_socket_addrs()
            .map(|it| format!("{:?}", it.collect::<Vec<_>>())),
    );
    a.deny(
        "resolve example.com:80",
        ("example.com", 80)
            .to_socket_addrs()
            .map(|it| format!("{:?}", it.collect::<Vec<_>>())),
    );
    a.finish();
}
