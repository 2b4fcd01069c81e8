#!/usr/bin/env bash
# Shows the glommio 0.9.0 lost wakeup that vendor/glommio fixes (see its PATCHED.md): a
# glommio echo server pinned to CPU 0 with a 1 ms preemption timer, two CPU hogs on the same
# CPU, and a client making 20,000 short connections. With crates.io's glommio the server soon
# stops reading an accepted connection ("HUNG at N"); with the patched copy every exchange
# completes (slowly: it shares its CPU with two hogs).
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
            .preempt_timer(Duration::from_millis(1))
            .make()
            .unwrap();
        ex.run(async move {
            let l = unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
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
vendored="$(cd "$(dirname "$0")/.." && pwd)/vendor/glommio"
(cd "$dir" && cargo build -q --release && cp target/release/park-race upstream)
printf '\n[patch.crates-io]\nglommio = { path = "%s" }\n' "$vendored" >> "$dir/Cargo.toml"
(cd "$dir" && cargo build -q --release && cp target/release/park-race patched)
taskset -c 0 yes >/dev/null & hog1=$!
taskset -c 0 yes >/dev/null & hog2=$!
trap 'kill $hog1 $hog2 2>/dev/null' EXIT
echo "== crates.io glommio 0.9.0"; taskset -c 1 "$dir/upstream" || true
echo "== vendor/glommio (patched)"; taskset -c 1 "$dir/patched"
