// The HTTP side of `attend serve` (cpp-httplib): the JSON API under /api/, the page and its
// scripts compiled into the binary (web/), limits, and a clean stop on SIGTERM or SIGINT.
#pragma once

#include <cstddef>
#include <string>

#include "serve/service.h"
#include "serve/watch.h"

namespace attend::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (the one chosen is printed)
  // Larger requests get 413. A WAV upload is the largest request: 4 MiB holds two minutes of
  // 16 kHz 16-bit mono.
  size_t max_body_bytes = 4 * 1024 * 1024;
  int max_connections = 32;  // connections served at once; more wait their turn
  int read_timeout_seconds = 10;
};

// Blocks SIGTERM and SIGINT in the calling thread, so that every thread started afterwards (the
// service's worker, the HTTP pool) leaves them to RunServer. Call before making the service.
void BlockStopSignals();

// Serves until SIGTERM or SIGINT, then stops accepting, finishes the requests in flight and
// returns 0. Prints "attend serve: listening on http://HOST:PORT/" to stdout once it listens.
// Throws attend::Error when it cannot listen.
// `watcher` (nullable) answers /api/watch.
int RunServer(TranslationService& service, const ServerOptions& options,
              const RunWatcher* watcher = nullptr);

// A file of the page by its URL path ("/" is "/index.html"): its bytes and content type; null
// when there is none.
struct WebAsset {
  const char* path;
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
const WebAsset* FindWebAsset(const std::string& path);

}  // namespace attend::serve
