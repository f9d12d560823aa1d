#include "broker/tls_stream.h"

#include <cerrno>

namespace dsx::broker {

namespace asio = boost::asio;

TlsStream::TlsStream(asio::ip::tcp::socket socket, SSL_CTX* context)
    : core_(std::make_shared<Core>(std::move(socket))) {
  error_code ec;
  // OpenSSL reads and writes the descriptor itself; a read that would block must return
  // SSL_ERROR_WANT_READ, not block an I/O thread.
  core_->socket.non_blocking(true, ec);
  if (ec) return;
  SSL* ssl = SSL_new(context);
  if (!ssl) return;
  if (SSL_set_fd(ssl, core_->socket.native_handle()) != 1) {
    SSL_free(ssl);
    return;
  }
  // RELEASE_BUFFERS: no record buffers while idle. PARTIAL_WRITE + MOVING_WRITE_BUFFER:
  // async_write_some reports what went out, and a retried write may come from a new address.
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read ahead into a buffer of several records: one read(2) brings up to 64 KiB instead of
  // two per record (header, then body). The buffer is released with the others when empty.
  SSL_set_read_ahead(ssl, 1);
  SSL_set_default_read_buffer_len(ssl, kReadAheadBytes);
  SSL_set_accept_state(ssl);
  core_->ssl = ssl;
}

TlsStream::~TlsStream() {
  // Pending operations keep the core; a pending deadline does not.
  core_->timer.cancel();
}

void TlsStream::expires_after(duration timeout) {
  core_->timed_out = false;
  const uint64_t generation = ++core_->deadline_generation;
  core_->timer.expires_after(timeout);
  core_->timer.async_wait([weak = std::weak_ptr<Core>(core_), generation](const error_code& ec) {
    if (ec) return;  // replaced or cancelled
    const std::shared_ptr<Core> core = weak.lock();
    if (!core || core->deadline_generation != generation) return;
    core->timed_out = true;
    error_code ignored;
    core->socket.cancel(ignored);
  });
}

void TlsStream::expires_never() {
  core_->timed_out = false;
  ++core_->deadline_generation;
  core_->timer.cancel();
}

void TlsStream::cancel() {
  error_code ignored;
  core_->socket.cancel(ignored);
}

TlsStream::error_code TlsStream::error_of(int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;  // the peer's close_notify
  const unsigned long queued = ERR_get_error();
  if (ssl_error == SSL_ERROR_SYSCALL && queued == 0) {
    // The socket failed, or closed without close_notify.
    if (errno != 0 && errno != EAGAIN) return error_code(errno, boost::system::system_category());
    return asio::ssl::error::stream_truncated;
  }
  if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
    return asio::ssl::error::stream_truncated;  // OpenSSL 3's word for the same
  if (queued == 0) return asio::ssl::error::unexpected_result;
  return error_code(static_cast<int>(queued), asio::error::get_ssl_category());
}

void beast_close_socket(TlsStream& stream) {
  boost::system::error_code ignored;
  stream.socket().close(ignored);
}

void teardown(boost::beast::role_type, TlsStream& stream, boost::system::error_code& ec) {
  // Best effort without blocking: send close_notify if the socket takes it, then close.
  if (stream.native_handle()) {
    ERR_clear_error();
    (void)SSL_shutdown(stream.native_handle());
  }
  stream.socket().close(ec);
}

}  // namespace dsx::broker
