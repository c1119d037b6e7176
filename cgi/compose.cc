// /compose
//   GET   new message; draft=ID opens a stored draft (an encrypted one through the
//         unlock page); reply=ID or forward=ID (with folder) starts from a message:
//         a reply to an encrypted message is encrypted by default and quotes the
//         original only if this session's grant decrypts it.
//   POST  multipart/form-data: csrf, draft, from, to, cc, subject, body, attachment
//         files, keep (stored attachments to keep), sign, encrypt, kind
//         (openpgp|smime), original_encrypted, plain_ok, in_reply_to, references, and
//         action = save | sign | encrypt | send. Sign without a live grant → the unlock
//         page (the draft waits in Drafts). Sign/encrypt → the review page
//         (data-page="signed"); its Send posts action=send, draft and digest.
//         Send of a plain message → the sent page (data-page="sent"); a refused send
//         keeps the draft and says why (502).
// The logic lives in cgi/common/compose_flow.cc (shared with /unlock) and core/mail.
#include "cgi/common/compose_flow.h"

int main() {
  using namespace wmk::cgi;
  Program program{.name = "compose",
                  .methods = {"GET", "POST"},
                  .access = Access::session,
                  .secrets = {.fields = {}, .cookies = {kGrantCookie}}};
  return run(program, compose_handler);
}
