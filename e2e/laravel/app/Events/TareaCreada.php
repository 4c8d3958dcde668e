<?php

namespace App\Events;

use App\Models\Tarea;
use Illuminate\Broadcasting\Channel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcast;
use Illuminate\Foundation\Events\Dispatchable;

// (a) The seed's event, unchanged: its public property is the payload.
class TareaCreada implements ShouldBroadcast
{
    use Dispatchable;

    public function __construct(public Tarea $tarea)
    {
    }

    public function broadcastOn()
    {
        return new Channel('tareas');
    }

    public function broadcastAs()
    {
        return 'tarea.creada';
    }
}
