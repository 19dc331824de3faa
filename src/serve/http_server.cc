// cpp-httplib glue: routes, limits, JSON errors for every 4xx, and SIGTERM/SIGINT handling.
#include "serve/http_server.h"

#include <httplib.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "attend/error.h"

namespace attend::serve {
namespace {

void SendJson(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

std::string ErrorJson(const std::string& message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
}

}  // namespace

void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int RunServer(TranslationService& service, const ServerOptions& options,
              const RunWatcher* watcher) {
  BlockStopSignals();
  httplib::Server server;
  const int pool = options.max_connections;
  server.new_task_queue = [pool] { return new httplib::ThreadPool(static_cast<size_t>(pool)); };
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(options.read_timeout_seconds, 0);
  server.set_keep_alive_max_count(100);

  server.Post("/api/translate", [&](const httplib::Request& req, httplib::Response& res) {
    const Reply r = service.Translate(req.body);
    SendJson(res, r.status, r.body);
  });
  server.Post("/api/transcribe", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string model = req.has_param("model") ? req.get_param_value("model") : "";
    const std::string beam = req.has_param("beam") ? req.get_param_value("beam") : "";
    const Reply r = service.Transcribe(req.body, model, beam);
    SendJson(res, r.status, r.body);
  });
  server.Post("/api/caption", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string model = req.has_param("model") ? req.get_param_value("model") : "";
    const std::string beam = req.has_param("beam") ? req.get_param_value("beam") : "";
    const Reply r = service.Caption(req.body, model, beam);
    SendJson(res, r.status, r.body);
  });
  server.Get("/api/models", [&](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, service.ModelsJson());
  });
  server.Get("/api/watch", [watcher](const httplib::Request&, httplib::Response& res) {
    // Not an error without --watch: the page asks on every load.
    SendJson(res, 200, watcher ? watcher->Json() : R"({"watching":false})");
  });
  server.Get("/api/stats", [&](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, service.StatsJson());
  });
  server.Get("/api/health", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, R"({"ok":true})");
  });
  server.Get(R"(/[A-Za-z0-9_.\-/]*)", [](const httplib::Request& req, httplib::Response& res) {
    const WebAsset* a = FindWebAsset(req.path);
    if (a == nullptr) {
      SendJson(res, 404, ErrorJson("no such page: " + req.path));
      return;
    }
    res.set_content(reinterpret_cast<const char*>(a->data), a->size, a->content_type);
  });
  // Every error without a body of its own (unknown route, a body over the limit, a method not
  // allowed) gets a JSON one.
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP " + std::to_string(res.status);
    if (res.status == 404) message = "no such path: " + req.path;
    if (res.status == 413) message = "the request body is over the server's limit";
    if (res.status == 400) message = "malformed HTTP request";
    SendJson(res, res.status, ErrorJson(message));
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string message = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          message = std::string("internal error: ") + e.what();
        } catch (...) {
        }
        SendJson(res, 500, ErrorJson(message));
      });

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    ATTEND_CHECK(port > 0, "serve: cannot listen on ", options.host);
  } else {
    ATTEND_CHECK(server.bind_to_port(options.host, port), "serve: cannot listen on ", options.host,
                 ":", port, " (in use, or not an address of this machine)");
  }
  // The stop signals arrive here, not in any serving thread.
  std::thread stopper([&server] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != 0) server.stop();
  });
  std::printf("attend serve: listening on http://%s:%d/\n", options.host.c_str(), port);
  std::fflush(stdout);
  server.listen_after_bind();  // returns after stop(), once the requests in flight are answered
  if (stopper.joinable()) {
    // A stop that did not come from a signal (listen failed): wake the stopper.
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
  }
  std::printf("attend serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace attend::serve
