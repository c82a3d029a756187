require ["variables", "include"];
global "test";
global "test_mailbox";

set "test" "$$";
include "subscript1";

set "test" "Make money";
include "subscript2";
