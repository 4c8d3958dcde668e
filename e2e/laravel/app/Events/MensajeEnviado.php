<?php

namespace App\Events;

use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcast;

// (d) Sent with broadcast(...)->toOthers(): InteractsWithSockets copies the
// request's X-Socket-ID into the public $socket, so the payload carries it
// in "data" as well as beside it.
class MensajeEnviado implements ShouldBroadcast
{
    use InteractsWithSockets;

    public function __construct(public int $conversacion, public string $texto)
    {
    }

    public function broadcastOn()
    {
        return new PrivateChannel('conversacion.' . $this->conversacion);
    }

    public function broadcastAs()
    {
        return 'mensaje.enviado';
    }
}
