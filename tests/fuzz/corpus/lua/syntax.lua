plugin {
  name = 'syntax',
  init = function(
}
