//! Hosts on a virtual network, for tests whose processes must talk over a
//! real (if virtual) link: Linux network namespaces joined by a bridge.
//! Needs root (CAP_NET_ADMIN) and iproute2 (`ip`, `bridge`, `tc`).
//!
//! ```text
//!   netns "redis"        netns "site"         netns "a"  …
//!   eth0 10.N.M.1        eth0 10.N.M.2        eth0 10.N.M.3
//!     │ veth               │ veth               │ veth
//!   ──┴────────────────────┴────────────────────┴──  bridge (root netns, no address)
//! ```
//!
//! [`Network::new`] makes the bridge and picks a /24 of 10.0.0.0/8;
//! [`Network::host`] makes a namespace with `lo` up and one veth whose
//! other end is a port of the bridge. Namespaces have no route but their
//! /24 and the bridge has no address, so nothing reaches the root
//! namespace or leaves the machine. Names carry the test process's pid and
//! a counter, so tests (and test binaries) may run at once; everything is
//! deleted on drop, panics included (processes still running in a host's
//! namespace are killed first, by pid), and the first network of a process
//! deletes what killed test processes left.
//!
//! [`Host::cut`] turns the host's bridge port to `disabled`: the bridge
//! drops every frame from and to the host while both ends of the veth keep
//! their carrier. To the host and its peers it is a cable cut somewhere on
//! the path: no RST, no ICMP, no link-down event. Established TCP
//! connections stall and retransmit, and carry on after [`Host::restore`]
//! (once their next retransmission is due); a new connection times out.
//! (Taking the veth down instead makes the host's kernel answer new
//! connections with "No route to host" after about a second.)
//!
//! [`Host::delay`] adds netem delay to the host's link; kernels without
//! `sch_netem` say so in its error.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Networks made by this process (names and subnets).
static NETWORKS: AtomicUsize = AtomicUsize::new(0);

/// Run `ip`-style `program args…`; panic with its stderr if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} (apt-get install iproute2): {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {} (the multi-host tests need root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Like [`run`], but for cleanup: failures are ignored.
fn quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}

/// A bridge in the root namespace and the /24 its hosts share.
pub struct Network {
    /// `tn<pid hex>-<n>`: the prefix of every name of this network.
    id: String,
    bridge: String,
    subnet: [u8; 3],
    hosts: AtomicUsize,
}

/// The pid in a name this module gave (`tn<pid hex>-…`, `trawl-tn<pid hex>-…`).
fn owner(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("trawl-")
        .unwrap_or(name)
        .strip_prefix("tn")?;
    u32::from_str_radix(rest.split('-').next()?, 16).ok()
}

/// Delete what test processes that are gone (killed, so no drop ran) left:
/// their namespaces, with whatever still runs in them, and their bridges.
fn sweep() {
    let dead =
        |name: &str| owner(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    let list = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for ns in list(&["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if ns.starts_with("trawl-tn") && dead(ns) {
            for pid in list(&["netns", "pids", ns]).split_whitespace() {
                quietly("kill", &["-KILL", pid]);
            }
            quietly("ip", &["netns", "del", ns]);
        }
    }
    for line in list(&["-o", "link", "show", "type", "bridge"]).lines() {
        if let Some(br) = line
            .split(": ")
            .nth(1)
            .filter(|b| b.starts_with("tn") && dead(b))
        {
            quietly("ip", &["link", "del", br]);
        }
    }
}

impl Network {
    pub fn new() -> Network {
        let n = NETWORKS.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            sweep();
        }
        let id = format!("tn{:x}-{n}", std::process::id());
        let bridge = format!("{id}br");
        let network = Network {
            subnet: [10, 200 + (n / 250 % 50) as u8, (n % 250) as u8],
            id,
            bridge,
            hosts: AtomicUsize::new(0),
        };
        let br = network.bridge.as_str();
        run("ip", &["link", "add", br, "type", "bridge"]);
        // No address of its own, and bridged frames skip the host's
        // iptables (a Docker host's FORWARD policy would drop them).
        run(
            "ip",
            &[
                "link",
                "set",
                br,
                "addrgenmode",
                "none",
                "type",
                "bridge",
                "nf_call_iptables",
                "0",
                "nf_call_ip6tables",
                "0",
                "nf_call_arptables",
                "0",
            ],
        );
        run("ip", &["link", "set", br, "up"]);
        network
    }

    /// A new host on this network: its own namespace, `lo` up, `eth0` with
    /// the next address of the subnet.
    pub fn host(&self, name: &str) -> Host {
        let i = self.hosts.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(i < 255, "a /24 holds 254 hosts");
        let [a, b, c] = self.subnet;
        let addr = Ipv4Addr::new(a, b, c, i as u8);
        let safe: String = name
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
            .collect();
        let netns = format!("trawl-{}-{safe}", self.id);
        let veth = format!("{}h{i}", self.id);
        assert!(veth.len() <= 15, "interface name {veth} too long");
        run("ip", &["netns", "add", &netns]);
        // From here on, drop cleans up whatever was made.
        let host = Host {
            name: name.to_string(),
            netns,
            addr,
            veth,
        };
        let (ns, veth) = (host.netns.as_str(), host.veth.as_str());
        run(
            "ip",
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        );
        run("ip", &["link", "set", veth, "addrgenmode", "none"]);
        run("ip", &["link", "set", veth, "master", &self.bridge, "up"]);
        let cidr = format!("{addr}/24");
        run("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"]);
        run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        host
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::new()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        quietly("ip", &["link", "del", &self.bridge]);
    }
}

/// One namespace on a [`Network`].
pub struct Host {
    /// The name given to [`Network::host`].
    pub name: String,
    /// The namespace (`ip netns exec NETNS …`).
    pub netns: String,
    /// Its address on the network (`eth0`).
    pub addr: Ipv4Addr,
    /// The root namespace's end of its veth, a port of the bridge.
    veth: String,
}

impl Host {
    /// `program` to be run inside this host's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }

    /// Blackhole the host: the bridge drops its frames both ways (see the
    /// module documentation).
    pub fn cut(&self) {
        run("bridge", &["link", "set", "dev", &self.veth, "state", "0"]);
    }

    /// Undo [`Host::cut`]: the port forwards again.
    pub fn restore(&self) {
        run("bridge", &["link", "set", "dev", &self.veth, "state", "3"]);
    }

    /// Delay every packet to and from this host by `ms` (netem on both
    /// ends of its veth, so a round trip to a peer takes 2 × `ms` more);
    /// 0 removes the delay. Fails where the kernel has no `sch_netem`.
    pub fn delay(&self, ms: u32) -> Result<(), String> {
        let delay = format!("{ms}ms");
        let ends: [(&[&str], &str); 2] = [(&[], &self.veth), (&["-n", &self.netns], "eth0")];
        for (ns, dev) in ends {
            let mut cmd = Command::new("tc");
            cmd.args(ns);
            if ms == 0 {
                cmd.args(["qdisc", "del", "dev", dev, "root"]);
            } else {
                cmd.args(["qdisc", "replace", "dev", dev, "root", "netem", "delay"])
                    .arg(&delay);
            }
            let out = cmd.output().map_err(|e| format!("tc: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "tc netem on {dev} of {}: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Whatever still runs in the namespace was started by this test.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                quietly("kill", &["-KILL", pid]);
            }
        }
        // Deleting the root end deletes the pair now (a namespace's own
        // devices go when the kernel gets round to it).
        quietly("ip", &["link", "del", &self.veth]);
        quietly("ip", &["netns", "del", &self.netns]);
    }
}
