// `attend serve`: the translation server and the live attention page (src/serve/).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attend/error.h"
#include "commands.h"
#include "serve/http_server.h"
#include "serve/service.h"
#include "serve/watch.h"

namespace attend::tools {
namespace {

struct ServeArgs {
  std::vector<std::string> models;  // CHECKPOINT or NAME=CHECKPOINT
  serve::ServiceOptions service;
  serve::ServerOptions server;
  bool no_batching = false;
  serve::WatchOptions watch;
  std::string watch_text;
};

// "NAME=PATH" or "PATH" (named after the checkpoint's folder, or the file without .ckpt).
std::pair<std::string, std::string> NameAndPath(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq != std::string::npos && eq > 0 && arg.find('/') > eq)
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  const std::filesystem::path p(arg);
  std::string name = p.parent_path().filename().string();
  if (name.empty() || name == ".") name = p.stem().string();
  return {name, arg};
}

int Run(ServeArgs& a) {
  // Before any thread starts: SIGTERM and SIGINT are left to the server's stopper thread.
  serve::BlockStopSignals();
  std::vector<std::pair<std::string, std::string>> models;
  for (const std::string& m : a.models) {
    auto named = NameAndPath(m);
    for (const auto& [name, path] : models)
      ATTEND_CHECK(name != named.first, "serve: two models are named '", name,
                   "'; name them with -m NAME=CHECKPOINT");
    models.push_back(std::move(named));
  }
  ATTEND_CHECK(!models.empty() || !a.watch.run_dir.empty(),
               "serve: give a model (-m CHECKPOINT) or a training run to watch (--watch DIR)");
  if (a.no_batching) a.service.batch_window_ms = 0;
  std::unique_ptr<serve::RunWatcher> watcher;
  if (!a.watch.run_dir.empty()) {
    if (!a.watch_text.empty()) {
      std::ifstream in(a.watch_text);
      ATTEND_CHECK(in.good(), "serve --watch-text: cannot read ", a.watch_text);
      for (std::string line; a.watch.sentences.size() < 3 && std::getline(in, line);)
        if (!line.empty()) a.watch.sentences.push_back(line);
    }
    watcher = std::make_unique<serve::RunWatcher>(a.watch);
  }
  serve::TranslationService service(models, a.service);
  return serve::RunServer(service, a.server, watcher.get());
}

}  // namespace

Runner RegisterServeCommand(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand(
      "serve", "Serve translation with attention over HTTP: a JSON API and a page to watch it");
  c->add_option("-m,--model", a->models,
                "Checkpoint to serve, as PATH or NAME=PATH (repeat for several models)");
  c->add_option("--watch", a->watch.run_dir,
                "Follow a training run (the --out folder of attend train): its curves, and the "
                "attention of the --watch-text sentences at every validation");
  c->add_option("--watch-text", a->watch_text,
                "With --watch: a file whose first 3 lines are translated at every validation");
  c->add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  c->add_option("--port", a->server.port, "Port (0 = any free port; the one chosen is printed)")
      ->capture_default_str();
  c->add_option("--max-body-bytes", a->server.max_body_bytes, "Larger requests get 413")
      ->capture_default_str();
  c->add_option("--max-connections", a->server.max_connections,
                "Connections served at once (more wait their turn)")
      ->capture_default_str();
  c->add_option("--max-lines", a->service.max_lines, "Lines per request")->capture_default_str();
  c->add_option("--max-line-bytes", a->service.max_line_bytes, "Bytes per line")
      ->capture_default_str();
  c->add_option("--max-beam", a->service.max_beam, "Largest beam a request may ask for")
      ->capture_default_str();
  c->add_option("--batch-window-ms", a->service.batch_window_ms,
                "Requests arriving within this window share one decode")
      ->capture_default_str();
  c->add_option("--max-batch-sentences", a->service.max_batch_sentences,
                "Sentences decoded together at most")
      ->capture_default_str();
  c->add_flag("--no-batching", a->no_batching, "Decode every request on its own");
  c->add_option("--threads", a->service.threads, "Decoding threads (0 = all cores)");
  c->add_option("--precision", a->service.precision,
                "Decoder arithmetic for every model: f32, bf16 or int8 (default: each "
                "checkpoint's; int8 for attend quantize's)");
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
