require "include";
global "x";