require "encoded-character";
if header "a" "${unicode:110000}" {}