//! The process metrics every Prometheus client library exports (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), under their usual names so existing dashboards and
//! alerts work unchanged. Read from `/proc` at scrape time: nothing is counted per request.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads the running process's figures on each scrape.
#[derive(Debug, Default)]
pub(super) struct ProcessCollector;

/// What one scrape reports; `None` where this platform cannot tell.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = Figures::now();
        if let Some(seconds) = figures.cpu_seconds {
            let metric = ConstCounter::new(seconds);
            metric.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                metric.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                figures.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                figures.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                figures.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                figures.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let metric = ConstGauge::new(value);
                metric.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    metric.metric_type(),
                )?)?;
            }
        }
        if let Some(start) = figures.start_time_seconds {
            let metric = ConstGauge::new(start);
            metric.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                None,
                metric.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Figures {
    #[cfg(target_os = "linux")]
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time(&text));
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = i64::try_from(rustix::param::page_size()).unwrap_or(4096);
        let mut figures = parse_stat(&stat, ticks, page, boot).unwrap_or_default();
        figures.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| i64::try_from(dir.count()).unwrap_or(i64::MAX));
        figures.max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map(|limit| i64::try_from(limit).unwrap_or(i64::MAX));
        figures
    }

    #[cfg(not(target_os = "linux"))]
    fn now() -> Self {
        Self::default()
    }
}

/// The system's boot time (seconds since the epoch), the `btime` line of `/proc/stat`.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The figures in `/proc/self/stat` (proc(5)): fields after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn parse_stat(
    stat: &str,
    ticks_per_second: f64,
    page_size: i64,
    boot: Option<u64>,
) -> Option<Figures> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; utime is 14, so index 11 here.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let cpu_ticks = field(14)? + field(15)?;
    let start_ticks = field(22)?;
    Some(Figures {
        cpu_seconds: Some(cpu_ticks as f64 / ticks_per_second),
        virtual_bytes: field(23).and_then(|v| i64::try_from(v).ok()),
        resident_bytes: field(24)
            .and_then(|pages| i64::try_from(pages).ok())
            .map(|pages| pages.saturating_mul(page_size)),
        start_time_seconds: boot.map(|boot| boot as f64 + start_ticks as f64 / ticks_per_second),
        open_fds: None,
        max_fds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_are_read() {
        let stat = "4242 (rocket gate) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 150 0 0 20 0 3 0 1000 104857600 2560 18446744073709551615";
        let figures = parse_stat(stat, 100.0, 4096, Some(1_700_000_000)).unwrap();
        assert_eq!(figures.cpu_seconds, Some(4.0));
        assert_eq!(figures.virtual_bytes, Some(104_857_600));
        assert_eq!(figures.resident_bytes, Some(2560 * 4096));
        assert_eq!(figures.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(parse_stat("garbage", 100.0, 4096, None), None);
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_memory_fds_and_a_start_in_the_past() {
        let figures = Figures::now();
        assert!(figures.resident_bytes.unwrap() > 0);
        assert!(figures.open_fds.unwrap() >= 3);
        assert!(figures.max_fds.unwrap() >= figures.open_fds.unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = figures.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start}"
        );
    }
}
