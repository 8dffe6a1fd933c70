//! `remotemedia serve`: the gRPC server (and optional metrics endpoint) until SIGTERM or
//! Ctrl-C.

use anyhow::{anyhow, Context, Result};

use crate::args::ServeArgs;
use crate::runtime::BoundedRuntime;
use crate::Host;

pub(crate) fn serve(args: ServeArgs, host: &dyn Host) -> Result<()> {
    use remotemedia_grpc::{ServerConfig, ServerParts, Telemetry};
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.reflection {
        config.reflection = true;
    }
    if let Some(m) = args.metrics_listen {
        config.metrics_listen = Some(m);
    }
    let registry = host.server_registry(&config)?;
    let node_types = registry.node_types().count();
    let runtime = BoundedRuntime::new(None)?;
    let served = runtime.block_on(async move {
        // Signal handlers first: a SIGTERM as soon as the port accepts is a clean shutdown.
        let stop = remotemedia_grpc::termination_signal();
        let metrics_stop = remotemedia_grpc::termination_signal();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let telemetry = std::sync::Arc::new(Telemetry::new());
        telemetry.set_abandoned_source(host.abandoned_calls());
        if let Some(maddr) = config.metrics_listen {
            let l = remotemedia_grpc::telemetry::bind_metrics(maddr)
                .await
                .with_context(|| format!("cannot listen on {maddr} for metrics"))?;
            tokio::spawn(remotemedia_grpc::telemetry::serve_metrics(
                l,
                std::sync::Arc::clone(&telemetry),
                metrics_stop,
            ));
            eprintln!("remotemedia: Prometheus metrics on http://{maddr}/metrics");
        }
        eprintln!(
            "remotemedia: serving remotemedia.v1 on {addr} ({node_types} node types; auth {}; \
             max {} concurrent calls)",
            if config.tokens().is_empty() {
                "off"
            } else {
                "on"
            },
            config.limits.max_concurrent,
        );
        let parts = ServerParts {
            config,
            registry,
            render: host.renderer(),
            telemetry,
        };
        remotemedia_grpc::serve(parts, listener, async {
            stop.await;
            eprintln!("remotemedia: shutting down (draining open streams)");
        })
        .await
        .map_err(|e| anyhow!(e))?;
        eprintln!("remotemedia: stopped");
        Ok(())
    });
    // Calls of streams cut off by the drain were dropped above, which interrupts Python code;
    // dropping `runtime` waits a bounded grace for any still running (see BoundedRuntime).
    served
}
