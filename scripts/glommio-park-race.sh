#!/usr/bin/env bash
# Shows the glommio 0.9.0 park race that src/park_guard.rs works around: a glommio echo server
# pinned to CPU 0 with a 1 ms preemption timer, two CPU hogs on the same CPU, and a client
# making 20,000 short connections. Without the guard the server soon stops reading an accepted
# connection ("HUNG at N"); with it every exchange completes.
#
#   scripts/glommio-park-race.sh            # both variants, needs 2 CPUs (0 and 1)
set -euo pipefail
dir="${TMPDIR:-/tmp}/servebench-park-race"
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<'TOML'
[package]
name = "park-race"
version = "0.1.0"
edition = "2021"
[dependencies]
glommio = "=0.9.0"
futures-lite = "1"
TOML
cat > "$dir/src/main.rs" <<'RS'
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

fn main() {
    let guard = std::env::args().nth(1).as_deref() == Some("guard");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
            .preempt_timer(Duration::from_millis(1))
            .make()
            .unwrap();
        ex.run(async move {
            let l = unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
            if guard {
                let tick = async {
                    loop {
                        glommio::timer::sleep(Duration::from_millis(5)).await
                    }
                };
                glommio::spawn_local(tick).detach();
            }
            loop {
                let mut s = l.accept().await.unwrap();
                let echo = async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                glommio::spawn_local(echo).detach();
            }
        });
    });
    for i in 0..20000 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        if c.read_exact(&mut b).is_err() {
            println!("HUNG at exchange {i}");
            std::process::exit(1);
        }
    }
    println!("all 20000 exchanges completed");
}
RS
(cd "$dir" && cargo build -q --release)
bin="$dir/target/release/park-race"
taskset -c 0 yes >/dev/null & hog1=$!
taskset -c 0 yes >/dev/null & hog2=$!
trap 'kill $hog1 $hog2 2>/dev/null' EXIT
echo "== without the guard"; taskset -c 1 "$bin" || true
echo "== with the guard";    taskset -c 1 "$bin" guard
