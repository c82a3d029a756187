require "index";
if header :index 0 "a" "b" {}