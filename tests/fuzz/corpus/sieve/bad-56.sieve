require "editheader";
deleteheader "X-A:";