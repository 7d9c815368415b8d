// pointexd: the PointEx daemon. Serves the HTTP/JSON API of ../shared/API.md on one engine.
//
//   pointexd [--config config/pointexd.json] [--listen HOST:PORT] [--data-dir DIR]
//            [--durability sync|async] [--threads N] [--log-level LEVEL] [--port-file FILE]
//
// Start: listen first (GET /healthz answers 503 not_ready while the engine recovers), then open
// the engine, then serve. SIGTERM or SIGINT: stop accepting, finish the requests in flight,
// close the engine (flush), exit 0. Exit 1 when it cannot start (bad config, port taken, engine
// cannot open), 2 for bad command-line usage.

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <pointex/engine.hpp>
#include <thread>

#include "server/api.hpp"
#include "server/config.hpp"
#include "server/http_server.hpp"
#include "server/payment_http.hpp"

using namespace pointex;
using namespace pointex::server;

namespace {

constexpr auto drain_timeout = std::chrono::seconds(30);

int fail(const std::string& message) {
  spdlog::error("{}", message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pointexd: the PointEx daemon (HTTP/JSON API, see README.md)"};
  std::string config_path;
  std::string listen;
  std::string data_dir;
  std::string durability;
  std::string log_level;
  std::string port_file;
  std::optional<std::uint32_t> threads;
  app.add_option("--config", config_path, "configuration file (JSON; see the table in README)");
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)");
  app.add_option("--data-dir", data_dir, "engine data directory");
  app.add_option("--durability", durability, "sync (fsync before answering) or async")
      ->check(CLI::IsMember({"sync", "async"}));
  app.add_option("--threads", threads, "engine scheduler threads (0: one per core)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--port-file", port_file, "write the bound port to this file once listening");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto logger = spdlog::stderr_color_mt("pointexd");
  spdlog::set_default_logger(logger);
  Config config;
  std::string error;
  if (!config_path.empty() && !load_config(config_path, &config, &error)) {
    return fail("config: " + error);
  }
  if (!listen.empty()) config.listen = listen;
  if (!data_dir.empty()) config.engine.data_dir = data_dir;
  if (!durability.empty()) {
    config.engine.durability = durability == "sync" ? Durability::sync : Durability::async;
  }
  if (threads) config.engine.threads = *threads;
  if (!log_level.empty()) config.log_level = log_level;
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  // The engine logs to the logger named "pointex": same sink and level.
  auto engine_logger =
      std::make_shared<spdlog::logger>("pointex", logger->sinks().begin(), logger->sinks().end());
  engine_logger->set_level(logger->level());
  spdlog::register_logger(engine_logger);
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(config.listen, &host, &port)) {
    return fail("listen: expected HOST:PORT, got '" + config.listen + "'");
  }
  if (config.api_keys.empty()) {
    spdlog::warn("no api_keys configured: every /v1 request will be refused (401)");
  }

  // Signals are taken by sigwait() below, in this thread only: block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Metrics metrics;
  auto api = std::make_unique<Api>(config, &metrics);
  auto server = std::make_unique<HttpServer>(api.get());
  if (!server->start(host, port, &error)) return fail(error);
  spdlog::info("pointexd listening on {}:{} (data dir {}, durability {}); opening the engine", host,
               server->port(), config.engine.data_dir,
               config.engine.durability == Durability::sync ? "sync" : "async");
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << server->port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }

  // Payment providers: an http one's default callback_url is this daemon's bound address.
  const std::string bound = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(server->port());
  config.engine.payment_providers = make_payment_providers(config.payment_providers, bound);
  config.engine.check_back_client = std::make_shared<HttpCheckBackClient>(config.check_back);
  std::unique_ptr<Engine> engine;
  const auto t0 = std::chrono::steady_clock::now();
  const Status s = Engine::open(config.engine, &engine);
  if (!s.is_ok()) {
    server->stop();
    return fail("cannot open the engine on " + config.engine.data_dir + ": " + s.to_string());
  }
  const EngineStats stats = engine->stats();
  api->set_engine(engine.get());
  // Webhook delivery: threads of its own, off the engine's and the server's.
  auto webhooks = std::make_unique<WebhookDispatcher>(*engine, config.webhooks);
  webhooks->start();
  api->set_webhooks(webhooks.get());
  spdlog::info(
      "ready: {} ledgers, {} accounts, {} events recovered in {} ms (open took {} ms)",
      stats.ledgers, stats.accounts, stats.recovered_events, stats.recovery_ms,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("{} received: stopping (no new connections, finishing {} requests in flight)",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT", api->inflight());
  api->begin_shutdown();
  server->stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() + drain_timeout;
  while (api->inflight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!server->wait_closed(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()))) {
    spdlog::warn("connections still open after {} s: closing them", drain_timeout.count());
  }
  // Normally nothing is left by now. If the drain timed out, answers still to come are posted
  // to the stopped (still alive) io_context and dropped with it at the end.
  server->stop();  // joins the I/O threads
  api->set_webhooks(nullptr);
  webhooks->stop();  // the attempt under way finishes; progress is recorded
  webhooks.reset();
  const auto t1 = std::chrono::steady_clock::now();
  engine.reset();  // waits for in-flight engine work (its callbacks use the Api), flushes, closes
  spdlog::info(
      "stopped: engine closed in {} ms",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t1)
          .count());
  api.reset();
  server.reset();  // destroys the connections that are left
  return 0;
}
