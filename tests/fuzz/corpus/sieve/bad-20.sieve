require "copy";
redirect :copy :copy "a@b";